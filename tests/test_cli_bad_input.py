"""Every `stagelab` command given bad files or ids: exit 2 and one sentence that says what
to do, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import EXIT_BAD_INPUT, main
from engine.launch.runs import record_run
from engine.resources import demo_plan_path
from engine.store import Store, Workspace

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(demo_plan_path())


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A workspace with one recorded run, broken workspaces and bad paths, by name."""
    good = Workspace.open(tmp_path / "ws")
    store = Store.open(good.db_path)
    run_id = record_run(
        good,
        store,
        name="demo",
        plan_text=demo_plan_path().read_text(encoding="utf-8"),
        plan_dir=str(demo_plan_path().parent),
        gpus="cpu",
    )
    store.close()
    junk = tmp_path / "junk-ws"
    (junk / "runs").mkdir(parents=True)
    (junk / "stagelab.db").write_bytes(os.urandom(8192))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n", encoding="utf-8")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x00\x01\xfe\xff" + os.urandom(1024))
    monkeypatch.setenv("XDG_DATA_HOME", str(a_file))  # desktop-install cannot write there
    monkeypatch.delenv("STAGELAB_HOME", raising=False)
    return {
        "WS": str(tmp_path / "ws"),
        "JUNK": str(junk),
        "FILE": str(a_file),
        "UNDER_FILE": str(a_file / "x"),
        "RUN": run_id,
        "DIR": str(tmp_path),
        "MISSING": str(tmp_path / "missing" / "plan.yaml"),
        "BINARY": str(binary),
        "DEMO": DEMO,
    }


# (command line with placeholders, what the message must say)
CASES = {
    "validate-missing": ("validate MISSING", "file not found; check the path"),
    "validate-folder": ("validate DIR", "is a folder; name a plan file"),
    "validate-binary": ("validate BINARY", "is not UTF-8 text"),
    "validate-nothing": ("validate", "name a plan file"),
    "run-missing": ("--workspace WS run MISSING", "file not found"),
    "run-folder": ("--workspace WS run DIR", "is a folder"),
    "run-binary": ("--workspace WS run BINARY", "is not UTF-8 text"),
    "run-junk-db": ("--workspace JUNK run DEMO --detach", "is not a Stagelab database"),
    "run-ws-is-file": ("--workspace FILE run DEMO --detach", "is not a folder"),
    "run-ws-under-file": ("--workspace UNDER_FILE run DEMO --detach", "is not a folder"),
    "run-bad-gpus": ("--workspace WS run DEMO --gpus x", "--gpus must be"),
    "resume-unknown": ("--workspace WS resume nope", "no run 'nope'"),
    "resume-junk-db": ("--workspace JUNK resume RUN", "is not a Stagelab database"),
    "resume-queued": ("--workspace WS resume RUN", "cannot be resumed"),
    "watch-unknown": ("--workspace WS watch nope", "no run 'nope'"),
    "watch-junk-db": ("--workspace JUNK watch RUN", "is not a Stagelab database"),
    "pause-unknown": ("--workspace WS pause nope", "no run 'nope'"),
    "pause-junk-db": ("--workspace JUNK pause RUN", "is not a Stagelab database"),
    "pause-not-live": ("--workspace WS pause RUN", "is not running"),
    "stop-unknown": ("--workspace WS stop nope", "no run 'nope'"),
    "stop-ws-is-file": ("--workspace FILE stop RUN", "is not a folder"),
    "clone-unknown": ("--workspace WS clone nope", "no experiment 'nope'"),
    "clone-junk-db": ("--workspace JUNK clone demo", "is not a Stagelab database"),
    "ls-junk-db": ("--workspace JUNK ls", "is not a Stagelab database"),
    "ls-ws-is-file": ("--workspace FILE ls", "is not a folder"),
    "ls-ws-under-file": ("--workspace UNDER_FILE ls --json", "is not a folder"),
    "show-unknown": ("--workspace WS show nope", "no run 'nope'"),
    "show-junk-db": ("--workspace JUNK show RUN --json", "is not a Stagelab database"),
    "export-unknown": ("--workspace WS export nope --metrics DIR/x.csv", "no run 'nope'"),
    "export-junk-db": ("--workspace JUNK export RUN --metrics DIR/x.csv", "Stagelab database"),
    "export-missing-dir": ("--workspace WS export RUN --metrics MISSING", "does not exist; create"),
    "export-to-folder": ("--workspace WS export RUN --metrics DIR", "is a folder"),
    "export-under-file": ("--workspace WS export RUN --metrics UNDER_FILE", "is not a folder"),
    "desktop-install-unwritable": ("desktop-install", "cannot write"),
}


@pytest.mark.parametrize("line,says", CASES.values(), ids=CASES.keys())
def test_bad_input_exits_2_with_one_sentence(places, capsys, line, says):
    argv = [places.get(word, word) for word in line.split()]
    argv = [arg.replace("DIR/", places["DIR"] + "/") for arg in argv]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == EXIT_BAD_INPUT, (out, err)
    assert "Traceback" not in out + err
    assert says in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    command = next(a for a in argv if not a.startswith("-") and a not in places.values())
    assert lines[0].startswith((f"stagelab {command}: ", "/", places["DIR"])), err


NASTY = {
    "binary": lambda p: p.write_bytes(bytes(range(256)) * 64),
    "not-utf8": lambda p: p.write_bytes("name: café\nstages: []\n".encode("latin-1")),
    "utf16": lambda p: p.write_bytes("name: x\nstages: []\n".encode("utf-16")),
    "deep-10000": lambda p: p.write_text("name: x\nstages: " + "[" * 10_000 + "]" * 10_000),
    "deep-dicts": lambda p: p.write_text(
        "name: x\nstages:\n  - " + "{a: " * 5000 + "1" + "}" * 5000
    ),
    "deep-900": lambda p: p.write_text("name: x\nstages: " + "[" * 900 + "]" * 900),
    "50-MB": lambda p: p.write_text("name: x\nstages: []\n# " + "x" * 50_000_000 + "\n"),
    "empty": lambda p: p.write_bytes(b""),
    "top-level-list": lambda p: p.write_text("- name: x\n"),
    "top-level-scalar": lambda p: p.write_text("42\n"),
    "nul-byte": lambda p: p.write_bytes(b"name: a\x00b\nstages: []\n"),
    "huge-numbers": lambda p: p.write_text(
        "name: x\nstages:\n  - {name: a, kind: train, seed: 1e400, epochs: .nan, batch_size: "
        + "9" * 5000
        + ", model: {builtin: bert-tiny}, data: {path: x.csv}}\n"
    ),
}


@pytest.mark.parametrize("make", NASTY.values(), ids=NASTY.keys())
def test_nasty_plan_files_give_problems_not_tracebacks(tmp_path, capsys, make):
    path = tmp_path / "plan.yaml"
    make(path)
    for argv in (["validate", str(path)], ["--workspace", str(tmp_path / "ws"), "run", str(path)]):
        assert main(argv) == EXIT_BAD_INPUT
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        assert "problem" in err and err.count("\n") >= 2, err


def test_the_real_command_prints_no_traceback(tmp_path):
    """The same through the installed entry point: a separate process, its stderr."""
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(os.urandom(4096))
    for args in (
        ["validate", str(junk)],
        ["--workspace", str(tmp_path / "ws"), "export", "nope", "--metrics", "/missing/d/x.csv"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "engine.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.strip()
