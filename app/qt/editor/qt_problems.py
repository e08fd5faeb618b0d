"""The plan's problems, from the same validator as `stagelab validate`; activating one
selects its stage."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyle

from app.model.plan_document import PlanDocument
from app.model.problem_words import plan_line

_STAGE = re.compile(r"^stages\[(\d+)\]")


class QtProblemsList(QListWidget):
    """One line per problem, in words: the stage by its name, the setting by its label
    (the path in the tooltip)."""

    stageActivated = Signal(int)  # noqa: N815 - Qt signal naming

    def __init__(self, doc: PlanDocument, parent=None):
        super().__init__(parent)
        self.setObjectName("problemsList")
        self.setAccessibleName("Problems")
        self.setWordWrap(True)
        self.itemActivated.connect(self._activated)
        self.itemClicked.connect(self._activated)
        self.set_document(doc)

    def set_document(self, doc: PlanDocument) -> None:
        """Follow another plan."""
        self.doc = doc
        doc.problems_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """List the plan's current problems."""
        self.clear()
        icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        names = self.doc.stage_names()
        for problem in self.doc.shown_problems:
            match = _STAGE.match(problem.path)
            item = QListWidgetItem(icon, plan_line(problem, names))
            # The path as `stagelab validate` says it, for whoever edits the YAML.
            item.setToolTip(str(problem))
            item.setData(Qt.ItemDataRole.UserRole, int(match.group(1)) if match else -1)
            self.addItem(item)
        if not self.doc.stages and not self.doc.shown_problems:
            info = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation)
            item = QListWidgetItem(
                info, "A new plan: drag stage kinds from the palette into the plan to start."
            )
            item.setData(Qt.ItemDataRole.UserRole, -1)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.addItem(item)
        elif not self.doc.problems:
            ok = self.style().standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton)
            item = QListWidgetItem(ok, "No problems: the plan is ready to run.")
            item.setData(Qt.ItemDataRole.UserRole, -1)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.addItem(item)

    def messages(self) -> list[str]:
        """The problems as `stagelab validate` says them, with their paths (each shown
        line's tooltip); empty when the plan is valid."""
        return [f"{p.path}: {p.message}" for p in self.doc.shown_problems]

    def shown_lines(self) -> list[str]:
        """The problem lines as the list shows them: stage names and plain words."""
        return [plan_line(p, self.doc.stage_names()) for p in self.doc.shown_problems]

    def _activated(self, item: QListWidgetItem) -> None:
        row = item.data(Qt.ItemDataRole.UserRole)
        if row is not None and row >= 0:
            self.stageActivated.emit(row)
