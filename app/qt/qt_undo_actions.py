"""Undo and Redo of plan edits: the Edit menu's entries (named after the step), the
toolbar's (a fixed short text, the step in the tooltip), both off while the plan is not
on screen (on the Monitor tab Ctrl+Z would change a plan nobody sees), and Ctrl+Z in a
text field of the editor: the field's own typing first, then the plan's steps (a field
used to swallow the key even with nothing of its own to undo)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget


def _keys(text: str) -> list[QKeySequence]:
    # Made when asked, not at import: a key sequence needs the application to exist.
    if text == "Undo":
        return [QKeySequence(QKeySequence.StandardKey.Undo)]
    return [QKeySequence("Ctrl+Shift+Z"), QKeySequence(QKeySequence.StandardKey.Redo)]


class UndoActions(QObject):
    """The window's Undo/Redo actions over `stack`; `plan_visible` gates them."""

    def __init__(self, window: QWidget, stack: QUndoStack):
        super().__init__(window)
        self.window = window
        self.plan_visible = True
        self._can = {"Undo": False, "Redo": False}
        self.menu_actions: list[QAction] = []
        self.toolbar_actions: list[QAction] = []
        # Values from the signals only: the stack may be gone when the window is.
        for text, do, can_changed, text_changed in (
            ("Undo", stack.undo, stack.canUndoChanged, stack.undoTextChanged),
            ("Redo", stack.redo, stack.canRedoChanged, stack.redoTextChanged),
        ):
            menu = QAction(f"&{text}", window)
            menu.setShortcuts(_keys(text))
            menu.setObjectName(f"menu{text}")
            bar = QAction(text, window)
            bar.setObjectName(f"toolbar{text}")
            keys = _keys(text)[0].toString(QKeySequence.SequenceFormat.NativeText)
            bar.setToolTip(f"Nothing to {text.lower()}")
            for action in (menu, bar):
                action.setEnabled(False)
                action.triggered.connect(do)
            can_changed.connect(lambda can, t=text: self._set_can(t, can))
            text_changed.connect(
                lambda step, m=menu, b=bar, t=text, k=keys: (
                    m.setText(f"&{t} {step}".rstrip()),
                    b.setToolTip(f"{t} {step} ({k})" if step else f"Nothing to {t.lower()}"),
                )
            )
            window.addAction(menu)
            self.menu_actions.append(menu)
            self.toolbar_actions.append(bar)
        QApplication.instance().focusChanged.connect(self._on_focus_changed)

    def set_plan_visible(self, visible: bool) -> None:
        """The plan is (not) on screen: its Undo and Redo are (not) offered."""
        self.plan_visible = visible
        self._refresh()

    def _set_can(self, text: str, can: bool) -> None:
        self._can[text] = can
        self._refresh()

    def _refresh(self) -> None:
        for menu, bar in zip(self.menu_actions, self.toolbar_actions, strict=True):
            on = self.plan_visible and self._can[bar.text()]
            menu.setEnabled(on)
            bar.setEnabled(on)

    def _on_focus_changed(self, _old, new) -> None:
        # Fields are made as stages are shown: each gets the filter when first focused.
        if isinstance(new, QLineEdit) and self.window.isAncestorOf(new):
            if not new.property("planUndoKeys"):
                new.setProperty("planUndoKeys", True)
                new.installEventFilter(self)
                # Typing handed to the plan (Enter, focus out) is the plan's to undo now.
                new.editingFinished.connect(lambda edit=new: edit.setModified(False))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(watched, QLineEdit):
            is_undo = event.matches(QKeySequence.StandardKey.Undo)
            is_redo = event.matches(QKeySequence.StandardKey.Redo) or (
                event.keyCombination() == _keys("Redo")[0][0]
            )
            own = watched.isModified() and (
                watched.isUndoAvailable() if is_undo else watched.isRedoAvailable()
            )
            if (is_undo or is_redo) and not own:
                # Not the field's: the key goes on to the window's Undo/Redo shortcut.
                event.ignore()
                return True
        return False
