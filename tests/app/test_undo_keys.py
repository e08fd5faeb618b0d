"""Ctrl+Z in the editor's text fields undoes the field's own typing, then the plan's steps
(the name field used to swallow it); Undo, Redo and Run are off on the tabs that do not
show the plan they would act on."""

from __future__ import annotations

from PySide6.QtCore import Qt


def ctrl(qtbot, widget, key) -> None:
    qtbot.keyClick(widget, key, Qt.KeyboardModifier.ControlModifier)


def test_ctrl_z_in_the_name_field_reaches_the_plans_undo(window, qtbot):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    stages = len(window.doc.stages)
    window.plan_view.select_row(0)
    window.delete_action.trigger()
    assert len(window.doc.stages) == stages - 1
    name = window.plan_header.name
    name.setFocus()
    qtbot.waitUntil(name.hasFocus)
    ctrl(qtbot, name, Qt.Key.Key_Z)  # nothing typed here: the plan's last step
    assert len(window.doc.stages) == stages
    ctrl(qtbot, name, Qt.Key.Key_Y)  # and redo
    assert len(window.doc.stages) == stages - 1

    before = window.doc.data["name"]
    name.end(False)
    qtbot.keyClicks(name, "-v2")
    ctrl(qtbot, name, Qt.Key.Key_Z)  # the field's own typing first
    assert name.text() == before and window.doc.data["name"] == before
    qtbot.keyClicks(name, "-v3")
    qtbot.keyClick(name, Qt.Key.Key_Return)
    assert window.doc.data["name"] == f"{before}-v3"
    ctrl(qtbot, name, Qt.Key.Key_Z)  # handed to the plan: the plan's step now
    assert window.doc.data["name"] == before and name.text() == before


def test_undo_and_run_are_off_where_the_plan_is_not_seen(window, qtbot):
    from app.qt.editor.undo import SetPlanValue

    window.undo_stack.push(SetPlanValue(window.doc, "name", "renamed"))
    undo = [*window.undo_actions.menu_actions[:1], *window.undo_actions.toolbar_actions[:1]]
    assert all(a.isEnabled() for a in undo) and window.run_button.isEnabled()
    window.tabs.setCurrentIndex(2)  # the Monitor
    assert not any(a.isEnabled() for a in undo)
    assert not window.run_button.isEnabled() and not window.run_action.isEnabled()
    assert "Plan tab" in window.run_button.toolTip()
    window.undo_actions.menu_actions[0].trigger()  # a disabled action does nothing
    assert window.doc.data["name"] == "renamed"
    window.tabs.setCurrentIndex(0)
    assert all(a.isEnabled() for a in undo) and window.run_button.isEnabled()
