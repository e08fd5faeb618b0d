"""Resume in the window of a run that trains on a target (a real OpenSSH server on
127.0.0.1): the work (ssh, the target's engine starting) runs on a worker thread, so the
click returns at once; the monitor then follows the run through its mirror to the end. A
target that cannot be reached is one sentence, in a box and the status bar."""

from __future__ import annotations

import shutil
import sys
import time

import pytest
from PySide6.QtWidgets import QMessageBox

from engine.cli.main import main
from engine.store import Store, queries
from tests.engine.conftest import data_dir  # noqa: F401 - the fixture
from tests.engine.process.live_kill import pause_after_checkpoint
from tests.engine.remote.conftest import free_port, sshd  # noqa: F401 - the fixture

PLAN = """\
version: 1
name: resumed-in-window
stages:
  - name: cls
    kind: train
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: sentiment.csv, max_length: 16, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 120
    checkpoint: {every_steps: 50}
"""


@pytest.mark.slow
def test_resume_of_a_run_on_a_target_runs_off_the_gui_thread(
    window,
    sshd,  # noqa: F811
    data_dir,  # noqa: F811
    tmp_path,
    qtbot,
    capsys,
):
    ws, workdir, plan_dir = window.workspace.root, tmp_path / "there", tmp_path / "plan"
    plan_dir.mkdir()
    shutil.copy(data_dir / "sentiment.csv", plan_dir / "sentiment.csv")
    (plan_dir / "plan.yaml").write_text(PLAN)

    def stagelab(*args: str) -> int:
        capsys.readouterr()
        return main(["--workspace", str(ws), *args])

    args = sshd.target_args(workdir, sys.executable)
    assert stagelab("target", "add", "box", sshd.url, *args) == 0
    assert stagelab("run", str(plan_dir / "plan.yaml"), "--target", "box", "--detach") == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    store = window.store()

    def steps() -> list[int]:
        return queries.read_series(store, run_id, "train/loss", stage_idx=0)[0]

    # Held there at its first checkpoint over the engine's own channel (the target is this
    # machine), then stopped through its mirror once the mirror says `paused`: the stop
    # lands mid-stage however fast the machine trains.
    pause_after_checkpoint(workdir / "workspace", run_id, stage=0)
    qtbot.waitUntil(lambda: queries.get_run(store, run_id).status == "paused", timeout=240_000)
    assert stagelab("stop", run_id) == 0
    qtbot.waitUntil(lambda: queries.get_run(store, run_id).status == "stopped", timeout=60_000)
    assert len(steps()) < 120

    # A target gone: one sentence, nothing resumed.
    gone = f"ssh://{sshd.user}@127.0.0.1:{free_port()}"
    assert stagelab("target", "add", "gone", gone, *args) == 0
    exp = queries.create_experiment(store, "gone", PLAN, str(plan_dir))
    lost = queries.create_run(
        store, exp, plan_text=PLAN, plan_dir=str(plan_dir), gpus="cpu",
        runs_dir=window.workspace.runs_dir, target="gone",
        placement={"kind": "ssh", "remote_workspace": str(tmp_path / "nowhere")},
    )  # fmt: skip
    queries.set_run_status(store, lost, "interrupted")
    window.runs.resume_run(lost)
    task = window.runs.resume_task
    qtbot.waitUntil(lambda: not task.busy, timeout=60_000)
    said = window.statusBar().currentMessage()
    assert said.startswith(f"Run {lost} was not resumed: ") and "cannot be reached" in said
    box = window.findChild(QMessageBox, "resumeFailed")
    assert box is not None and "cannot be reached" in box.informativeText()
    box.close()
    assert queries.get_run(store, lost).status == "interrupted"

    clock = time.monotonic()
    window.runs.resume_run(run_id)
    returned = time.monotonic() - clock
    task = window.runs.resume_task
    assert returned < 1.0 and task.busy  # the target is reached on the worker thread
    qtbot.waitUntil(lambda: not task.busy, timeout=180_000)
    monitor = window.runs.monitor
    assert monitor.run is not None and monitor.run.run_id == run_id
    qtbot.waitUntil(lambda: "finished" in monitor.badge.text(), timeout=240_000)
    there = Store.open(workdir / "workspace" / "stagelab.db")
    assert queries.get_run(there, run_id).resume_count == 1
    assert queries.get_run(store, run_id).resume_count == 1  # mirrored here
    qtbot.waitUntil(lambda: queries.get_run(store, run_id).status == "finished", timeout=30_000)
    assert steps() == list(range(1, 121))
    monitor.close_run()
