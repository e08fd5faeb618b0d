"""The monitor re-attaches to a run that trains elsewhere: opening it starts the run's
mirror (none was running), which back-fills the local record from the other workspace
(here a workspace of this machine, the local transport), and the monitor shows the end."""

from __future__ import annotations

from app.qt.monitor.qt_run_monitor import QtRunMonitor
from engine.remote.mirror_process import mirror_running
from engine.store import Store, Workspace, queries
from tests.app.test_monitor_nan import diverged_run


def test_opening_a_run_on_a_target_starts_its_mirror(qtbot, tmp_path):
    there, run_id = diverged_run(tmp_path / "there")  # finished there, 48 points
    ws = Workspace.open(tmp_path / "here")
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "diverged", "name: diverged\nstages: []\n", "")
    queries.create_run(
        store, exp, plan_text="", plan_dir="", gpus="cpu", runs_dir=ws.runs_dir, run_id=run_id,
        placement={"remote_workspace": str(tmp_path / "there")},
    )  # fmt: skip
    monitor = QtRunMonitor(lambda: store)
    qtbot.addWidget(monitor)
    monitor.open_run(run_id)  # queued here: followed, so its mirror starts
    qtbot.waitUntil(lambda: queries.get_run(store, run_id).status == "finished", timeout=60_000)
    qtbot.waitUntil(lambda: not mirror_running(ws.run_dir(run_id)), timeout=30_000)
    mirrored = queries.read_series(store, run_id, "train/loss")
    assert repr(mirrored) == repr(queries.read_series(there, run_id, "train/loss"))  # NaN too
    qtbot.waitUntil(lambda: monitor.run.status == "finished", timeout=10_000)
    monitor.close_run()
