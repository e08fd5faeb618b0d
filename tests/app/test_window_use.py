"""The window as people really use it (issue 20): selection and its actions, renames,
plan names, cards that fit, honest progress (small screens: test_small_screen.py)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction

from app.qt.editor.qt_stage_card import card_rect
from engine.channel.messages import parse_message
from tests.app.test_log_and_compare import fake_run


def click_card(view, row: int, qtbot) -> None:
    rect = card_rect(view.visualRect(view.model().index(row)))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center() + QPoint(40, 0))


def test_selecting_a_card_enables_delete_and_duplicate(window, qtbot):
    view = window.plan_view
    delete = window.findChild(QAction, "deleteStageAction")
    duplicate = window.findChild(QAction, "duplicateStageAction")
    click_card(view, 2, qtbot)
    assert view.selected_row() == 2
    assert delete.isEnabled() and duplicate.isEnabled()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert window.doc.stage_names() == ["pretrain-mlm", "topics"]
    click_card(view, 0, qtbot)
    qtbot.keyClick(view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.stage_names() == ["pretrain-mlm", "pretrain-mlm-copy", "topics"]
    view.select_row(-1)
    assert not delete.isEnabled() and not duplicate.isEnabled()
    # on another tab, Del belongs to that tab
    click_card(view, 0, qtbot)
    window.runs.show_tab(1)
    assert not delete.isEnabled()
    window.runs.show_tab(0)
    assert delete.isEnabled()


def test_renaming_a_stage_renames_its_references_in_one_undo_step(window):
    doc, stack = window.doc, window.undo_stack
    original = doc.to_yaml()
    window.plan_view.select_row(0)
    name = window.inspector.editors[("name",)]
    name.input.setText("mlm")
    name.input.editingFinished.emit()
    assert doc.stage_names()[0] == "mlm"
    assert doc.stages[1]["model"] == {"from_stage": "mlm"}
    assert doc.is_valid, [str(p) for p in doc.problems]
    assert window.run_button.isEnabled()
    assert window.plan_view.selected_row() == 0  # still editing the same stage
    assert stack.count() == 1 and "mlm" in stack.undoText()
    stack.undo()
    assert doc.to_yaml() == original
    stack.redo()
    assert doc.stages[1]["model"] == {"from_stage": "mlm"}


def test_rename_reaches_teachers_and_members_but_not_other_names():
    from pathlib import Path

    from app.model.plan_document import PlanDocument

    doc = PlanDocument(
        {
            "version": 1,
            "name": "p",
            "stages": [
                {"name": "a", "kind": "train"},
                {
                    "name": "b",
                    "kind": "distill",
                    "teacher": {"from_stage": "a"},
                    "model": {"from_stage": "ab"},
                },
                {
                    "name": "c",
                    "kind": "ensemble",
                    "members": [{"from_stage": "a"}, {"from_stage": "b"}],
                },
                {
                    "name": "d",
                    "kind": "joint",
                    "members": [{"model": {"from_stage": "a"}}, {"model": {"hub": "x"}}],
                },
            ],
        },
        None,
        Path("."),
    )
    doc.rename_stage(0, "z")
    stages = doc.stages
    assert stages[1]["teacher"] == {"from_stage": "z"}
    assert stages[1]["model"] == {"from_stage": "ab"}
    assert stages[2]["members"] == [{"from_stage": "z"}, {"from_stage": "b"}]
    assert stages[3]["members"][0]["model"] == {"from_stage": "z"}


def test_a_new_plan_is_named_in_the_window_and_saved_with_its_name(empty_window, tmp_path):
    import yaml

    win = empty_window
    header = win.plan_header
    header.name.setText("reviews")
    header.name.editingFinished.emit()
    header.description.setText("sentiment from scratch")
    header.description.editingFinished.emit()
    assert win.doc.data["name"] == "reviews"
    assert win.windowTitle().startswith("reviews")
    assert win.undo_stack.undoText() == "Plan description"
    target = tmp_path / "elsewhere.yaml"
    assert win.files._write(target)
    saved = yaml.safe_load(target.read_text())
    assert (saved["name"], saved["description"]) == ("reviews", "sentiment from scratch")
    win.undo_stack.undo()
    assert header.description.text() == ""


def test_an_unnamed_plan_saved_as_a_file_takes_the_file_name(empty_window, tmp_path):
    import yaml

    assert empty_window.files._write(tmp_path / "my-study.yaml")
    assert yaml.safe_load((tmp_path / "my-study.yaml").read_text())["name"] == "my-study"
    assert empty_window.plan_header.name.text() == "my-study"


def test_cards_fit_the_view_after_a_plan_opens_on_another_tab(window, qtbot):
    from app.model.plan_document import PlanDocument
    from engine.resources import demo_plan_path

    view = window.plan_view
    window.runs.show_tab(1)  # Clone opens its plan while Experiments is shown
    window.set_document(PlanDocument.from_file(demo_plan_path(), as_template=True))
    window.runs.show_tab(0)
    for size in ((1400, 880), (1024, 640)):
        window.resize(*size)
        qtbot.wait(20)
        for row in range(view.model().rowCount()):
            card = card_rect(view.visualRect(view.model().index(row)))
            assert 0 <= card.left() and card.right() <= view.viewport().width(), (size, card)
        assert not view.horizontalScrollBar().isVisible()


def record_demo_run(window) -> str:
    from engine.launch.runs import record_run
    from engine.resources import demo_plan_path

    path = demo_plan_path()
    return record_run(
        window.workspace,
        window.store(),
        name="demo",
        plan_text=path.read_text(),
        plan_dir=str(path.parent),
        gpus="cpu",
    )


def test_run_progress_totals_are_the_lr_preview_step_counts_from_the_start(window, qtbot):
    planned = [c.steps for c in window.lr_preview.curves]  # the demo, as the editor shows it
    run_id = record_demo_run(window)
    window.runs.open_run(run_id)
    monitor = window.runs.monitor
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    panel = monitor.progress
    total = sum(planned)
    assert panel.overall.format() == f"0 / {total:,} steps"
    assert [panel.rows[i][1].format() for i in range(3)] == [f"0 / {n:,}" for n in planned]
    # stage 1 trains: the run's total stays the plan's, later stages keep their lengths
    run = monitor.run
    run.apply(
        parse_message({"type": "stage", "idx": 0, "status": "running", "total_steps": planned[0]})
    )
    run.apply(parse_message({"type": "status", "status": "running"}))
    run.apply(
        parse_message(
            {
                "type": "progress",
                "stage": 0,
                "step": 293,
                "total": planned[0],
                "overall_step": 293,
                "overall_total": 708,
                "steps_per_s": 10.0,
            }
        )
    )
    monitor._redraw()
    assert panel.overall.format() == f"293 / {total:,} steps"
    assert panel.rows[2][1].format() == f"0 / {planned[2]:,}"
    # the last stage stops early (early stopping): a finished run's bar is full
    for idx, steps in enumerate(planned):
        done = steps - 9 if idx == 2 else steps
        run.apply(
            parse_message({"type": "stage", "idx": idx, "status": "finished", "steps_done": done})
        )
    run.apply(
        parse_message(
            {
                "type": "progress",
                "stage": 2,
                "step": planned[2] - 9,
                "total": planned[2],
                "overall_step": total - 9,
                "overall_total": total,
            }
        )
    )
    run.apply(parse_message({"type": "bye", "status": "finished"}))
    monitor._redraw()
    assert panel.overall.format() == f"{total - 9:,} / {total - 9:,} steps"
    assert panel.overall.value() == panel.overall.maximum()
    monitor.close_run()


def test_the_inspector_shows_only_settings_that_apply(window):
    window.plan_view.select_row(2)  # AdamW with a linear schedule
    inspector = window.inspector

    def shown(*keys) -> bool:
        return not inspector.editors[keys].isHidden()

    assert shown("optimizer", "betas") and not shown("optimizer", "momentum")
    assert not shown("optimizer", "nesterov") and not shown("schedule", "gamma")
    assert not shown("schedule", "cycles") and not shown("schedule", "step_size")
    inspector.editors[("optimizer", "name")].edited.emit("sgd")
    inspector.editors[("schedule", "name")].edited.emit("step")
    assert shown("optimizer", "momentum") and shown("optimizer", "nesterov")
    assert not shown("optimizer", "betas") and shown("schedule", "gamma")
    assert shown("schedule", "step_size") and not shown("schedule", "cycles")
    # short words for the undo step, and a toolbar button that does not grow
    inspector.editors[("freezing", "unfreeze", "every_steps")].edited.emit(30)
    assert window.undo_stack.undoText() == "Change unfreeze every n steps"
    toolbar_undo = window.findChild(QAction, "toolbarUndo")
    assert toolbar_undo.text() == "Undo"
    assert "unfreeze every n steps" in toolbar_undo.toolTip()


def test_a_new_plan_is_greeted_with_a_hint_not_a_problem(empty_window):
    problems = empty_window.problems
    assert problems.messages() == []
    assert "drag stage kinds" in problems.item(0).text()
    assert empty_window.bottom_tabs.tabText(1) == "Problems"
    assert empty_window.plan_state.text() == "Add stages from the palette"
    assert not empty_window.run_button.isEnabled()


def test_help_menu_shortcuts_and_toolbar_tips(window):
    from app.qt.qt_help_menu import shortcut_lines, versions

    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus[-1] == "Help"
    keys = dict(shortcut_lines(window))
    assert keys["Quit"] == "Ctrl+Q" and keys["Delete stage"] and keys["Run plan"] == "Ctrl+R"
    assert window.findChild(QAction, "quitAction").shortcut().toString() == "Ctrl+Q"
    assert window.files.save_action.toolTip() == "Save (Ctrl+S)"
    found = versions()
    assert found["Stagelab"] != "not installed" and found["Qt"]


def test_status_words_agree_after_resume_pause_and_finish(window, qtbot):
    run_id = record_demo_run(window)
    window.runs.open_run(run_id)
    monitor = window.runs.monitor
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    run, panel = monitor.run, monitor.progress
    run.apply(parse_message({"type": "stage", "idx": 0, "status": "running"}))
    monitor._set_status("paused")
    monitor._redraw()
    assert panel.rows[0][2].text() == "paused"
    window.statusBar().showMessage(f"Run {run_id} resumes from its last checkpoint")
    monitor.resumed()
    monitor._redraw()
    assert "starting" in monitor.badge.text() and panel.rows[0][2].text() == "starting…"
    assert panel.overall_text.text() == "starting…"
    monitor._set_status("finished")
    assert window.statusBar().currentMessage() == ""
    monitor.close_run()


def test_a_resumed_run_that_ends_between_two_polls_is_shown_ended_at_once(window, qtbot):
    """The new engine claims the run and ends it before the monitor's next look (the short
    rest of a run, or a failure at once): the monitor shows the ended run with its record
    at the next poll, not "starting…" until the claim's two-minute wait runs out (a fresh
    CI run waited the whole 120 s in a resume over SSH)."""
    import os
    import socket

    from engine.store import queries

    run_id = record_demo_run(window)
    store = window.store()
    queries.set_run_status(store, run_id, "stopped")
    window.runs.open_run(run_id)
    monitor = window.runs.monitor
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor.resumed(claims_before=0)
    monitor._poll()  # still `stopped`: the new engine has not claimed the run yet
    assert "starting" in monitor.badge.text()
    queries.claim_run(store, run_id, pid=os.getpid(), host=socket.gethostname(), resuming=True)
    queries.set_run_status(store, run_id, "finished")
    monitor._poll()
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    assert "finished" in monitor.badge.text()
    assert not monitor.resume_button.isEnabled()
    monitor.close_run()


def test_inspector_sections_fold_and_open_where_the_stage_has_settings(window, qtbot):
    from PySide6.QtWidgets import QToolButton

    window.plan_view.select_row(2)  # sets freezing and augmentation, no checkpoint group
    inspector = window.inspector

    def is_open(key: str) -> bool:
        return inspector.findChild(QToolButton, f"toggle_{key}").isChecked()

    assert is_open("freezing") and is_open("optimizer") and not is_open("checkpoint")
    box = inspector._groups[("checkpoint",)]
    assert box.isHidden()
    inspector.findChild(QToolButton, "toggle_checkpoint").click()
    assert not box.isHidden()
    inspector.findChild(QToolButton, "toggle_freezing").click()
    window.plan_view.select_row(1)
    window.plan_view.select_row(2)  # the person's choice is kept
    assert is_open("checkpoint") and not is_open("freezing")
    # a problem opens its section
    inspector.editors[("freezing", "layers")].edited.emit(-3)
    assert is_open("freezing")


def test_lr_preview_of_an_empty_plan_and_of_long_names(window, tmp_path, qtbot):
    from app.model.plan_document import PlanDocument

    preview = window.lr_preview
    window.set_document(PlanDocument.empty(tmp_path))
    preview.refresh()
    low, high = preview.plotItem.getViewBox().viewRange()[0]
    assert high <= 110  # not the demo's 1,467 steps
    window.doc.insert_stage(0, {"name": "x" * 80, "kind": "train", "max_steps": 10})
    preview.refresh()
    labels = [i.label.toPlainText() for i in preview._items if hasattr(i, "label")]
    assert labels and all(len(t) < 45 for t in labels)


def test_a_single_beta_is_reported_in_words(window):
    window.plan_view.select_row(1)
    betas = window.inspector.editors[("optimizer", "betas")]
    betas.input.setText("0.9")
    betas.input.editingFinished.emit()
    assert "stages[1].optimizer.betas: needs two numbers, such as 0.9, 0.999" in (
        window.problems.messages()
    )
    assert "needs two numbers" in betas._problem.text()
    assert not any("[1]: is required" in m for m in window.problems.messages())


def test_evaluation_legend_sits_under_the_axis_and_single_curves_have_none(qtbot):
    from app.qt.monitor.qt_run_plots import QtRunPlots

    plots = QtRunPlots()
    qtbot.addWidget(plots)
    plots.resize(730, 600)  # as on a 1024-px screen beside the side panel
    plots.show()
    run = fake_run("r", [50])
    metrics = ("accuracy", "perplexity", "f1", "precision", "recall")
    for key in [f"eval/{m}" for m in metrics] + ["train/lr"]:
        run.add_series(key, 0, [10, 20, 30], [0.2, 0.4, 0.6])
    plots.redraw(run, set(run.series), 0.0)
    qtbot.wait(50)
    evaluation = plots.plots["Evaluation"]
    box = evaluation.getPlotItem().vb.sceneBoundingRect()
    assert not evaluation.legend.sceneBoundingRect().intersects(box)
    for plot in plots.plots.values():  # nothing of the plot is cut off on the right
        item = plot.getPlotItem()
        assert item.sceneBoundingRect().right() <= plot.viewport().width() + 1, plot.objectName()
    labels = {label.text for _, label in evaluation.legend.items}
    assert labels == set(metrics)
    assert plots.plots["Learning rate"].legend.items == []
