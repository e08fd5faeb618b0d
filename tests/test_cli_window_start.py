"""`stagelab` (no command, or `gui`) hands over to the window before it builds or imports
the other commands: their parsers pull the plan schema, the store, predict and
engine.remote, ~0.3 s the window's cold start does without (bench/gui_start.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the window start must not import in the `stagelab` process (it execs the window).
DEFERRED = (
    "pydantic",
    "sqlalchemy",
    "alembic",
    "numpy",
    "yaml",
    "engine.spec",
    "engine.remote",
    "engine.cli.commands",
    "engine.cli.predict_command",
    "engine.cli.target_commands",
    "engine.cli.fetch_command",
    "engine.cli.cli_args",
    "torch",
    "PySide6",
    "engine.launch.runs",  # module_command is in engine.launch.command (stdlib only)
    "subprocess",
    "dataclasses",
)
HANDOVER = """
import json, os, sys
from engine.cli import main as m
def execv(path, argv):
    print(json.dumps({"argv": argv[1:], "modules": sorted(sys.modules)}))
    sys.exit(0)
os.execv = execv
m.main(sys.argv[1:])
"""


def handover(*args: str) -> dict:
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", HANDOVER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "args,window_args",
    [
        ((), []),
        (("--workspace", "ws"), ["--workspace", "ws"]),
        (
            ("--workspace", "ws", "gui", "p.yaml", "--screenshot", "s.png"),
            ["p.yaml", "--screenshot", "s.png", "--workspace", "ws"],
        ),
    ],
)
def test_the_window_start_hands_over_before_importing_the_commands(args, window_args):
    seen = handover(*args)
    assert seen["argv"] == ["-m", "app", *window_args]
    loaded = {m for m in seen["modules"] for d in DEFERRED if m == d or m.startswith(d + ".")}
    assert not loaded, sorted(loaded)


def test_other_arguments_still_go_to_the_full_parser():
    """A wrong window argument gets the full parser's message; help lists every command."""
    run = [sys.executable, "-m", "engine.cli"]
    proc = subprocess.run([*run, "gui", "--bogus"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr
    proc = subprocess.run([*run, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    assert all(c in proc.stdout for c in ("predict", "target", "fetch", "sweep-resume"))
