"""The confusion matrix of the latest evaluation: rows are true labels, columns predicted;
cells shaded by their share of the row, so a weak class stands out."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget


class QtConfusionMatrix(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setAccessibleName("Confusion matrix")
        self.caption = QLabel("No evaluation with a confusion matrix yet.")
        self.caption.setWordWrap(True)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)

    def show_matrix(self, confusion: dict[str, Any] | None, stage_name: str = "") -> None:
        if not confusion:
            self.table.clear()
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self.caption.setText("No evaluation with a confusion matrix yet.")
            return
        matrix = confusion["matrix"]
        size = len(matrix)
        labels = [str(x) for x in (confusion.get("labels") or range(size))]
        where = f"stage {stage_name}" if stage_name else "the run"
        if confusion.get("member"):
            where += f", member {confusion['member']}"
        step = f", step {confusion['step']}" if confusion.get("step") is not None else ""
        self.caption.setText(
            f"Latest evaluation of {where}{step} (rows: true label, columns: predicted)."
        )
        self.table.setRowCount(size)
        self.table.setColumnCount(size)
        self.table.setHorizontalHeaderLabels(labels)
        self.table.setVerticalHeaderLabels(labels)
        for r, row in enumerate(matrix):
            total = sum(row) or 1
            for c, count in enumerate(row):
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = count / total
                hue = 0.33 if r == c else 0.0  # correct in green, mistakes in red
                item.setBackground(QColor.fromHsvF(hue, 0.08 + 0.42 * share, 1.0))
                item.setForeground(QColor("black"))
                item.setToolTip(
                    f"true {labels[r]}, predicted {labels[c]}: {count} ({share:.0%} of the row)"
                )
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
