"""Screenshots of the window's targets (offscreen, no target needed): Run → Targets… with
a checked SSH workstation and a Slurm cluster, the Devices dock with a target picked (its
GPUs from the last check), and the monitor of a run queued on Slurm with its reason and
the batch script (Show script), the Devices dock with the cluster picked (its nodes' GPUs)
and the script shown before a run is submitted there (Submit, Cancel). Each at 1400x880
and 1024x640 (`<name>-1024.png`).

    python packaging/screenshots_targets.py [--out docs/screenshots]

The targets' check outcomes are recorded ones (what `Check` stores: engine/remote/
target_checks.py), and the queued run is a record whose script is the one
engine/remote/slurm.run_script writes for the cluster's settings: nothing is contacted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SIZES = (((1400, 880), ""), ((1024, 640), "-1024"))
GIB = 2**30
BOX_LINES = [
    "target 'gpu-box' (ssh://me@gpu-box.lab): connecting to me@gpu-box.lab",
    "python: /usr/bin/python3",
    "stagelab: Stagelab 0.9.0 from this install in /home/me/.stagelab/stagelab-0.9.0-3f2a9c1e7b44",
    "GPU 0: NVIDIA RTX A6000, 44.6 of 48.0 GiB free",
    "GPU 1: NVIDIA RTX A6000, 47.3 of 48.0 GiB free",
    "disk: 812.4 GiB free in /home/me/.stagelab",
]
CLUSTER_LINES = [
    "target 'cluster' (slurm+ssh://me@login.hpc.example): connecting to me@login.hpc.example",
    "python: /home/me/.stagelab/venv-0.9.0/bin/python",
    "stagelab: Stagelab 0.9.0 in the venv /home/me/.stagelab/venv-0.9.0",
    "GPUs: none (runs train on the CPU)",
    "disk: 2048.0 GiB free in /scratch/me/stagelab",
]
# sinfo's lines as engine/remote/slurm.Partition says them: (name, default, nodes, limit)
PARTITIONS = (("gpu", True, 16, "2-00:00:00"), ("debug", False, 2, "1:00:00"))


def record(window) -> str:
    """Two targets with their last checks, and a run queued on the cluster."""
    from engine.remote.slurm import run_script
    from engine.remote.target_checks import remember
    from engine.remote.targets import add_target, make_target
    from engine.resources import demo_plan_path
    from engine.store import queries

    store = window.store()
    box = make_target("gpu-box", "ssh://me@gpu-box.lab")
    slurm = {"partition": "gpu", "nodes": 2, "gpus_per_node": 4, "time": "4:00:00"}
    cluster = make_target(
        "cluster", "slurm+ssh://me@login.hpc.example",
        {"workdir": "/scratch/me/stagelab", "slurm": {**slurm, "account": "nlp"}},
    )  # fmt: skip
    for target in (box, cluster):
        add_target(store, target)
    gpus = [
        {"index": i, "name": "NVIDIA RTX A6000", "total": 48 * GIB, "free": free * GIB}
        for i, free in ((0, 44.6), (1, 47.3))
    ]
    remember(store, "gpu-box", {"ok": True, "lines": BOX_LINES, "gpus": gpus})
    from dataclasses import asdict

    from engine.remote.slurm import Partition

    found = [Partition(n, d, "up", t, k, "64", "512000", "gpu:a100:4") for n, d, k, t in PARTITIONS]
    said = ["Slurm partition " + p.describe() for p in found]
    outcome = {"ok": True, "lines": CLUSTER_LINES + said, "gpus": []}
    remember(store, "cluster", {**outcome, "partitions": [asdict(p) for p in found]})
    plan = demo_plan_path()
    text = plan.read_text(encoding="utf-8")
    exp = queries.create_experiment(store, "demo", text, str(plan.parent))
    run_id = queries.create_run(
        store, exp, plan_text=text, plan_dir=str(plan.parent), gpus="0,1,2,3",
        runs_dir=window.workspace.runs_dir, target="cluster", nproc=4,
    )  # fmt: skip
    workspace = "/scratch/me/stagelab/workspace"
    script = run_script(
        cluster.slurm, python="/home/me/.stagelab/venv-0.9.0/bin/python",
        workspace=workspace, run_id=run_id, nproc=4, name="demo",
    )  # fmt: skip
    queries.set_placement(
        store, run_id, kind="slurm", nodes=2, processes=8, gpus=8, remote_workspace=workspace,
        slurm={"job_id": "481516", "state": "PENDING", "reason": "Resources",
               "script": script, "partition": "gpu"},
    )  # fmt: skip
    return run_id


def submit_view(window):
    """The view Run on the cluster opens before anything is sent (Submit, Cancel), with the
    script `--dry-run` prints for the demo plan (app/qt/remote/qt_remote_start.py)."""
    from app.qt.monitor.qt_remote_parts import QtScriptView
    from engine.remote.slurm import run_script
    from engine.remote.slurm_runs import DRY_RUN_ID
    from engine.remote.targets import get_target

    cluster = get_target(window.store(), "cluster")
    script = run_script(
        cluster.slurm, python="/home/me/.stagelab/venv-0.9.0/bin/python",
        workspace="/scratch/me/stagelab/workspace", run_id=DRY_RUN_ID, nproc=4, name="demo",
    )  # fmt: skip
    what = f"plan 'demo' on target 'cluster' ({cluster.url})"
    view = QtScriptView(DRY_RUN_ID, "", script, window, submit=what)
    size = window.size()
    view.resize(min(820, size.width() - 60), min(600, size.height() - 60))
    view.show()
    return view


def over(window, dialog):
    """The window with a dialog drawn over its middle (a dialog is a window of its own)."""
    from PySide6.QtGui import QPainter

    picture = window.grab()
    shot = dialog.grab()
    painter = QPainter(picture)
    x = max(0, (picture.width() - shot.width()) // 2)
    y = max(0, (picture.height() - shot.height()) // 2)
    painter.fillRect(x + 6, y + 6, shot.width(), shot.height(), "#00000040")
    painter.drawPixmap(x, y, shot)
    painter.end()
    return picture


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme
    from app.qt.remote.qt_targets_dialog import QtTargetsDialog

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(tempfile.mkdtemp(prefix="stagelab-shots-"))
    run_id = record(window)

    def settle(seconds: float = 0.3) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()

    def save(picture, name: str) -> None:
        path = args.out / name
        picture.save(str(path))
        print(path)

    for size, suffix in SIZES:
        window.resize(*size)
        window.show()
        window.runs.show_tab(0)
        window.fit_docks(fresh=True)
        window.target_picker.choose("gpu-box")
        window.gpu_picker.item(0).setCheckState(window.gpu_picker.item(0).checkState().Checked)
        settle()
        save(window.grab(), f"devices-target{suffix}.png")

        dialog = QtTargetsDialog(window.store, window.workspace, window)
        dialog.resize(min(760, size[0] - 80), min(520, size[1] - 80))
        dialog.show()
        dialog.select("gpu-box")
        settle()
        save(over(window, dialog), f"targets-dialog{suffix}.png")
        dialog.select("cluster")
        settle()
        save(over(window, dialog), f"targets-dialog-slurm{suffix}.png")
        dialog.close()

        window.runs.open_run(run_id)
        settle(1.5)
        monitor = window.runs.monitor
        save(window.grab(), f"monitor-queued-slurm{suffix}.png")
        view = monitor.remote.show_script()
        view.resize(min(760, size[0] - 80), min(560, size[1] - 80))
        settle()
        save(over(window, view), f"monitor-slurm-script{suffix}.png")
        view.close()
        monitor.close_run()

        # Run with the cluster picked: its nodes' GPUs, then the script before it is sent.
        window.runs.show_tab(0)
        window.target_picker.choose("cluster")
        settle()
        save(window.grab(), f"devices-slurm{suffix}.png")
        view = submit_view(window)
        settle()
        save(over(window, view), f"submit-script{suffix}.png")
        view.close()
    window.doc._saved_text = window.doc.to_yaml()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
