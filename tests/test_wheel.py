"""The wheel as a user installs it: built (sdist, then the wheel from the sdist) with
`python -m build`, installed non-editable into a fresh venv, run from a folder outside the
checkout. The demo plan validates and, cut to 3 steps a stage, trains to `finished` on the
wheel's data files, and the window's screenshot is written, with only the wheel's own files
(plans, data, migrations, icons) to go on.

To save the 2+ minutes of reinstalling torch & co., the fresh venv borrows the test venv's
installed dependencies through a path entry; that entry does not run the test venv's .pth
files, so the editable install of this checkout is not importable there (checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, env: dict, timeout: float = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """A fresh venv with the wheel installed (non-editable), and the environment to use it."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        QT_QPA_PLATFORM="offscreen",
        STAGELAB_HOME=str(root / "home"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(root / "dist"),
            str(ROOT),
        ],
        cwd=root,
        env=env,
    )
    wheel = next((root / "dist").glob("stagelab-*.whl"))
    venv = root / "venv"
    # No pip of its own (ensurepip is ~3 s): this venv's pip installs into it (--python).
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root, env=env)
    python = venv / "bin" / "python"
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=root,
            env=env,
        ).strip()
    )
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        cwd=root,
        env=env,
    )
    return venv, env


def test_installed_wheel_runs_without_the_checkout(installed, tmp_path):
    venv, env = installed
    python, stagelab = venv / "bin" / "python", venv / "bin" / "stagelab"
    where = json.loads(
        run(
            [
                str(python),
                "-c",
                (
                    "import json, sys, app, engine, stagelab_resources;"
                    "from engine.resources import demo_plan_path;"
                    "print(json.dumps({'engine': engine.__file__, 'app': app.__file__,"
                    " 'demo': str(demo_plan_path()), 'path': sys.path}))"
                ),
            ],
            cwd=tmp_path,
            env=env,
        )
    )
    for name in ("engine", "app", "demo"):
        assert where[name].startswith(str(venv)), f"{name} comes from {where[name]}"
    assert not any(p and Path(p).resolve() == ROOT for p in where["path"])

    assert "valid plan 'demo' with 3 stage(s)" in run(
        [str(stagelab), "validate", "--demo"], cwd=tmp_path, env=env
    )
    # The demo plan as the wheel ships it, its data read from the wheel's files, each stage
    # cut to 3 steps (the whole demo trains for ~95 s; every stage kind and file is
    # reached in 3 steps just as well).
    demo = yaml.safe_load(Path(where["demo"]).read_text())
    for stage in demo["stages"]:
        stage["max_steps"] = 3
        stage["data"]["path"] = str((Path(where["demo"]).parent / stage["data"]["path"]).resolve())
        assert stage["data"]["path"].startswith(str(venv)), stage["data"]["path"]
        stage.get("eval", {}).pop("every_steps", None)
        stage.get("regularization", {}).pop("early_stopping", None)
    short = tmp_path / "demo-3-steps.yaml"
    short.write_text(yaml.safe_dump(demo))
    run(
        [str(stagelab), "--workspace", str(tmp_path / "ws"), "run", str(short)],
        cwd=tmp_path,
        env=env,
        timeout=900,
    )
    runs = json.loads(
        run(
            [str(stagelab), "--workspace", str(tmp_path / "ws"), "ls", "--json"],
            cwd=tmp_path,
            env=env,
        )
    )
    statuses = [r["status"] for exp in runs["experiments"] for r in exp["runs"]]
    assert statuses == ["finished"]

    shot = tmp_path / "window.png"
    run([str(stagelab), "gui", "--screenshot", str(shot)], cwd=tmp_path, env=env)
    assert shot.stat().st_size > 20_000
