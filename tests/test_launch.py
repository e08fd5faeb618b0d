"""One way to start a run (engine.launch.runs.start_run, used by the CLI, the window and
the sweep driver): a plan with problems, or batches that do not split over the processes,
start nothing and record nothing, and every problem is said."""

from __future__ import annotations

from engine.launch.runs import start_run
from engine.resources import demo_plan_path
from engine.store import Store, Workspace, queries


def test_a_run_that_cannot_start_records_nothing_and_says_why(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)
    demo = demo_plan_path()
    bad = demo.read_text().replace("lr: 1.0e-3", "lr: -1", 1)
    started = start_run(workspace, store, plan_text=bad, plan_dir=str(demo.parent))
    assert started.run_id is None and started.proc is None
    assert any("lr: must be greater than 0" in p for p in started.problems)
    # The demo's batches of 32 do not split over 3 processes: one problem per stage.
    started = start_run(
        workspace, store, plan_text=demo.read_text(), plan_dir=str(demo.parent), nproc=3
    )
    assert len(started.problems) == 3 and started.run_id is None
    assert all("cannot be split over 3 processes" in p for p in started.problems)
    assert queries.list_experiments(store) == [] and queries.list_runs(store) == []
