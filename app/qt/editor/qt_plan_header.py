"""The plan's own settings above its stages: name and description. The name is what the
window title, the saved file and the experiment a run records into are called."""

from __future__ import annotations

from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QWidget

from app.model.plan_document import UNSET, PlanDocument
from app.qt.editor.undo import SetPlanValue


class QtPlanHeader(QWidget):
    """Name and description of the plan; edits are undo steps."""

    def __init__(self, doc: PlanDocument, undo_stack: QUndoStack, parent=None):
        super().__init__(parent)
        self.setObjectName("planHeader")
        self.undo_stack = undo_stack
        self.name = QLineEdit()
        self.name.setObjectName("planName")
        self.name.setAccessibleName("Plan name")
        self.name.setPlaceholderText("name this plan")
        self.name.setToolTip("The plan's name: the title, the file and the experiment use it")
        self.name.setMinimumWidth(90)
        self.description = QLineEdit()
        self.description.setObjectName("planDescription")
        self.description.setAccessibleName("Plan description")
        self.description.setPlaceholderText("what the plan is for")
        self.description.setMinimumWidth(90)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(QLabel("Plan"))
        layout.addWidget(self.name, 2)
        layout.addWidget(self.description, 5)
        self.name.editingFinished.connect(lambda: self._set("name", self.name.text().strip()))
        self.description.editingFinished.connect(
            lambda: self._set("description", self.description.text().strip())
        )
        self.set_document(doc)

    def set_document(self, doc: PlanDocument) -> None:
        """Follow another plan."""
        self.doc = doc
        doc.changed.connect(self._on_doc_changed)
        self.refresh()

    def refresh(self) -> None:
        """Show the plan's name and description."""
        for key, edit in (("name", self.name), ("description", self.description)):
            value = self.doc.data.get(key)
            text = "" if value is None else str(value)
            if edit.text() != text:
                edit.setText(text)
                edit.setCursorPosition(0)

    def _on_doc_changed(self, what: str, index: int) -> None:
        if what == "plan":
            self.refresh()

    def _set(self, key: str, text: str) -> None:
        # An empty description is left out of the plan; an empty name is kept (and the
        # problems say a plan needs one), as the YAML file would hold it.
        value = UNSET if key == "description" and not text else text
        if self.doc.data.get(key, UNSET) == value:
            return
        self.undo_stack.push(SetPlanValue(self.doc, key, value))
