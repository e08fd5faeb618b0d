"""A sweep started from the window (issue 27): Run sweep is offered only for a plan with a
valid sweep section, the Plan tab and the Run button say the plan holds one, and Run sweep
records the sweep, starts the real sweep process detached and follows it in the Sweep view,
where Stop stops its trials at a checkpoint and Resume continues them."""

from __future__ import annotations

import os
import signal

import pytest
import yaml
from PySide6.QtCore import Qt

from app.model.plan_document import UNSET, PlanDocument
from app.qt.editor.undo import SetPlanValue
from app.qt.qt_run_actions import PLAN_TAB, SWEEPS_TAB
from engine.store import queries
from tests.app.conftest import mark_saved
from tests.app.test_monitor import DATA_DIR

PLAN = """
name: window-sweep
stages:
  - name: cls
    kind: train
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: reviews.csv, max_length: 16, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 24
    log_every_steps: 2
    eval: {every_steps: 8, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 8}
"""
SWEEP = {
    "objective": {"stage": "cls", "metric": "accuracy", "goal": "max"},
    "budget": {"trials": 2},
    "sampler": "grid",
    "pruner": {"kind": "none"},
    "space": {"stages.cls.seed": {"choice": [1, 2]}},
}


def sweep_offered(win) -> bool:
    """Run sweep enabled in the Run menu and on the toolbar."""
    button = win.sweep_button
    shown = win._sweep_button_slot.isVisible()
    assert win.run_sweep_action.isEnabled() == (shown and button.isEnabled())
    return win.run_sweep_action.isEnabled()


def test_run_sweep_is_offered_only_for_a_valid_sweep_and_the_plan_tab_says_so(window):
    win = window
    win.set_document(PlanDocument.from_text(PLAN, DATA_DIR))
    assert not sweep_offered(win) and not win._sweep_button_slot.isVisible()
    assert win.tabs.tabText(PLAN_TAB) == "Plan" and win.run_button.text() == "▶  Run"
    win.undo_stack.push(SetPlanValue(win.doc, "sweep", SWEEP))
    assert sweep_offered(win)
    assert win.tabs.tabText(PLAN_TAB) == "Plan · sweep"
    assert win.sweep_button.text() == "▶  Run sweep (2 trials)"
    assert "Run sweep (2 trials)" in win.run_sweep_action.text().replace("&", "")
    # Run is one run without the sweep, and says so.
    assert win.run_button.text() == "▶  Run once"
    assert "sweep section left out" in win.run_button.toolTip()
    win.undo_stack.undo()
    assert not sweep_offered(win) and win.tabs.tabText(PLAN_TAB) == "Plan"
    win.undo_stack.redo()
    assert sweep_offered(win) and win.tabs.tabText(PLAN_TAB) == "Plan · sweep"
    # A sweep toward a metric the stage does not evaluate is a problem: no Run sweep.
    bad = {**SWEEP, "objective": {**SWEEP["objective"], "metric": "f1"}}
    win.undo_stack.push(SetPlanValue(win.doc, "sweep", bad))
    assert win.tabs.tabText(PLAN_TAB) == "Plan · sweep"
    assert not sweep_offered(win) and win._sweep_button_slot.isVisible()
    assert "Problems" in win.sweep_button.toolTip()
    win.sweep_button.click()  # disabled: nothing is recorded
    assert queries.list_sweeps(win.store()) == []
    win.undo_stack.push(SetPlanValue(win.doc, "sweep", UNSET))
    assert not sweep_offered(win) and win.tabs.tabText(PLAN_TAB) == "Plan"


@pytest.fixture
def sweep_window(qtbot, tmp_path):
    from app import create_main_window

    win = create_main_window(tmp_path / "ws")
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1400, 880)
    win.show()
    yield win
    # Never leave a sweep process or an engine behind.
    store = win.store()
    for sweep in queries.list_sweeps(store):
        pids = [sweep.pid] + [queries.get_run(store, t.run_id).pid for t in sweep.trials]
        for pid in pids:
            if pid and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.mark.slow
def test_run_sweep_starts_the_sweep_process_and_stop_and_resume_work_from_the_window(
    qtbot, sweep_window
):
    from tests.engine.process.live_kill import first_run_id, pause_now

    win = sweep_window
    data = yaml.safe_load(PLAN)
    data["sweep"] = SWEEP
    win.set_document(PlanDocument.from_text(yaml.safe_dump(data, sort_keys=False), DATA_DIR))
    store = win.store()
    win.run_sweep_action.trigger()

    # Recorded before the window shows it, in its own experiment, as `stagelab sweep` does.
    [sweep] = queries.list_sweeps(store)
    assert queries.get_experiment(store, sweep.experiment_id).name == "window-sweep sweep"
    assert win.tabs.currentIndex() == SWEEPS_TAB
    view = win.runs.sweep_view
    assert view.model.sweep_id == sweep.id and view.timer.isActive()
    assert view.model.status in ("starting", "running")
    # A detached process of its own (not this one), which claims the sweep.
    qtbot.waitUntil(lambda: queries.get_sweep(store, sweep.id).pid is not None, timeout=60_000)
    owner = queries.get_sweep(store, sweep.id).pid
    assert owner != os.getpid() and os.getsid(owner) != os.getsid(0)
    qtbot.waitUntil(view.stop_button.isEnabled, timeout=10_000)
    assert not view.resume_button.isEnabled()

    # Trial 0 trains; held as soon as its engine answers (polled here: a forked engine
    # trains its 24 steps before the view's next refresh), so that Stop finds it mid-stage
    # (a stop writes its checkpoint).
    run0 = first_run_id(win.workspace.root)
    pause_now(win.workspace.root, run0, timeout=120)
    qtbot.waitUntil(lambda: len(view.model.rows) == 1, timeout=60_000)
    assert view.model.rows[0].run_id == run0
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.model.status == "stopped", timeout=60_000)
    assert [r.status for r in view.model.rows] == ["stopped"]
    assert queries.get_run(store, run0).status == "stopped"
    assert "stopped" in view.summary.text()
    assert view.resume_button.isEnabled() and not view.stop_button.isEnabled()
    assert not view.timer.isActive()

    # Resume: trial 0 continues from its checkpoint, then trial 1 runs; the sweep ends.
    qtbot.mouseClick(view.resume_button, Qt.MouseButton.LeftButton)
    assert view.model.status in ("starting", "running") and not view.resume_button.isEnabled()
    qtbot.waitUntil(lambda: view.model.status == "finished", timeout=240_000)
    info = queries.get_sweep(store, sweep.id)
    assert [t.status for t in info.trials] == ["finished", "finished"]
    assert info.trials[0].run_id == run0
    assert queries.get_run(store, run0).resume_count == 1
    events = queries.list_events(store, run0, kind="resume")
    assert events and "step 0" not in events[-1].message
    assert view.table.rowCount() == 2 and view.best_button.isEnabled()
    curves = view.model.trial_curves()
    assert [c[0] for c in curves] == [0, 1] and all(c[2] for c in curves)
