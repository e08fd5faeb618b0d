"""The Sweep view: its model (no Qt) over a recorded sweep, and the widget following it."""

from __future__ import annotations

import json

import pytest
import yaml

from app.model.sweep_view import SweepViewModel, short_path
from engine.store import Store, Workspace, queries

SPACE = {
    "stages.cls.optimizer.lr": {"log_uniform": [1e-4, 1e-2]},
    "stages.cls.schedule.name": {"choice": ["linear", "cosine"]},
}
PLAN = {
    "name": "p",
    "stages": [{"name": "mlm", "kind": "pretrain"}, {"name": "cls", "kind": "train"}],
}
TRIALS = [  # number, status, objective, lr, schedule
    (0, "finished", 0.71, 1e-3, "linear"),
    (1, "pruned", None, 1e-4, "cosine"),
    (2, "finished", 0.86, 3e-3, "cosine"),
    (3, "finished", 0.80, 5e-3, "linear"),
    (4, "running", None, 2e-3, "linear"),
]


@pytest.fixture
def recorded(tmp_path):
    """A sweep of four ended trials and a running one, as the sweep process records them."""
    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "demo sweep", yaml.safe_dump(PLAN), str(tmp_path))
    spec = {
        "objective": {"stage": "cls", "metric": "accuracy", "goal": "max", "target": 0.9},
        "budget": {"trials": 8},
        "sampler": "tpe",
        "space": SPACE,
    }
    sweep_id = queries.create_sweep(store, exp, spec)
    queries.claim_sweep(store, sweep_id, pid=__import__("os").getpid(), host="here")
    for number, status, value, lr, schedule in TRIALS:
        params = {"stages.cls.optimizer.lr": lr, "stages.cls.schedule.name": schedule}
        text = yaml.safe_dump({**PLAN, "description": f"trial {number}"})
        run = queries.create_run(
            store,
            exp,
            plan_text=text,
            plan_dir=str(tmp_path),
            gpus="cpu",
            runs_dir=workspace.runs_dir,
        )
        queries.upsert_stage(
            store,
            run,
            0,
            name="mlm",
            kind="pretrain",
            status="finished" if number == 0 else "reused",
        )
        queries.upsert_stage(store, run, 1, name="cls", kind="train", status="finished")
        queries.add_trial(store, sweep_id, number, params, run)
        queries.update_trial(store, sweep_id, number, status=status, objective=value)
    return store, sweep_id


def test_rows_sort_by_objective_status_and_parameters(recorded):
    store, sweep_id = recorded
    model = SweepViewModel(lambda: store)
    model.open(sweep_id)
    assert model.live and model.metric_label == "cls accuracy ↑" and model.target == 0.9
    assert [r.number for r in model.sorted_rows("objective")] == [2, 3, 0, 1, 4]
    assert [r.number for r in model.sorted_rows("status")][:3] == [0, 2, 3]
    assert [r.number for r in model.sorted_rows("stages.cls.optimizer.lr")] == [1, 0, 4, 2, 3]
    assert model.rows[1].reused == ("mlm",) and model.rows[0].reused == ()
    assert short_path("stages.cls.optimizer.lr") == "cls.optimizer.lr"
    assert model.best().number == 2
    assert "trial 2" in model.summary()
    assert model.plan_of(model.best())[0].count("trial 2") == 1


def test_running_best_and_scatter(recorded):
    store, sweep_id = recorded
    model = SweepViewModel(lambda: store)
    model.open(sweep_id)
    assert model.running_best() == ([0, 1, 2, 3, 4], [0.71, 0.71, 0.86, 0.86, 0.86])
    xs, ys, _ = model.scatter("stages.cls.optimizer.lr")
    assert xs == [1e-3, 3e-3, 5e-3] and model.is_log("stages.cls.optimizer.lr")
    xs, _, _ = model.scatter("stages.cls.schedule.name")
    assert model.is_categorical("stages.cls.schedule.name") and xs == [0.0, 1.0, 0.0]
    assert model.refresh() is False  # nothing changed
    queries.update_trial(store, sweep_id, 4, status="finished", objective=0.93)
    assert model.refresh() is True and model.best().number == 4


def test_the_view_follows_the_sweep_and_opens_the_best_plan(qtbot, recorded):
    from PySide6.QtCore import Qt

    from app.qt.sweep.qt_sweep_view import QtSweepView

    store, sweep_id = recorded
    view = QtSweepView(SweepViewModel(lambda: store))
    qtbot.addWidget(view)
    view.reload_sweeps()
    assert view.model.sweep_id == sweep_id and view.timer.isActive()  # live
    assert view.table.rowCount() == 5
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert headers[:5] == [
        "trial",
        "status",
        "cls accuracy ↑",
        "cls.optimizer.lr",
        "cls.schedule.name",
    ]
    view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    assert [view.table.item(r, 0).text() for r in range(3)] == ["2", "3", "0"]
    with qtbot.waitSignal(view.openPlan) as opened:
        view.best_button.click()
    assert "trial 2" in opened.args[0] and opened.args[2].endswith("trial 2")
    assert not view.compare_button.isEnabled()
    view.table.selectRow(0)
    view.table.setSelectionMode(view.table.SelectionMode.MultiSelection)
    view.table.selectRow(1)
    with qtbot.waitSignal(view.compareRuns) as compared:
        view.compare_button.click()
    assert len(compared.args[0]) == 2
    # The sweep goes on: a trial ends, and the view shows it within a second or two.
    queries.update_trial(store, sweep_id, 4, status="finished", objective=0.93)
    qtbot.waitUntil(lambda: "trial 4" in view.summary.text(), timeout=5000)
    queries.end_sweep(store, sweep_id, "finished", "trial 4 reached the target")
    qtbot.waitUntil(lambda: not view.timer.isActive(), timeout=5000)
    assert json.dumps(view.model.objective)
