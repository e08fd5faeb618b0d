"""Simulated drops: the Qt drag events a real drag delivers to the plan view."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.qt.editor.qt_plan_view import QtPlanView


def drop(view: QtPlanView, mime: QMimeData, y: int) -> None:
    """Drag `mime` over the view's viewport and drop it at height `y`."""
    target = view.viewport()
    pos = QPointF(200, y)  # enter and move take a QPoint (Qt 6.11), drop a QPointF
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos.toPoint(), actions, mime, buttons, mods)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(pos.toPoint(), actions, mime, buttons, mods)
    QApplication.sendEvent(target, move)
    assert move.isAccepted()
    event = QDropEvent(pos, actions, mime, buttons, mods)
    QApplication.sendEvent(target, event)
    assert event.isAccepted()


def y_between(view: QtPlanView, row: int) -> int:
    """A height in the viewport that drops before stage `row` (or after the last)."""
    count = view.model().rowCount()
    if count == 0:
        return 20
    if row >= count:
        return view.visualRect(view.model().index(count - 1)).bottom() - 5
    return view.visualRect(view.model().index(row)).top() + 5
