"""The samples table (issue 31, item 3): the model's answers on the plan's fixed inputs,
a row per input and a column per checkpoint (stage, step), so a person sees an answer
change across the plan. The monitor feeds it the run's events as they arrive; Compare
shows the same inputs across runs. The data is app/model/samples.py."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model.samples import SamplesTable

EMPTY = (
    "No sample outputs yet. Set eval.samples on a stage (a number of eval rows, or a list "
    "of input texts) to see the model's answers at every evaluation."
)
INPUT_WIDTH = 220  # the input column, in pixels; the full text is in its tooltip
RIGHT, WRONG = QColor.fromHsvF(0.33, 0.18, 1.0), QColor.fromHsvF(0.0, 0.16, 1.0)


class QtSamplesTable(QWidget):
    """Inputs down, checkpoints across; the target beside the input when the rows hold one.
    An answer that equals its target is tinted green, one that differs red."""

    def __init__(self, parent: QWidget | None = None, empty: str = EMPTY):
        super().__init__(parent)
        self.setObjectName("samplesTable")
        self.setAccessibleName("Sample outputs")
        self.empty = empty
        self.samples = SamplesTable()
        self.caption = QLabel(empty)
        self.caption.setObjectName("samplesCaption")
        self.caption.setWordWrap(True)
        self.grid = QTableWidget()
        self.grid.setObjectName("samplesGrid")
        self.grid.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.grid.setWordWrap(False)
        self.grid.verticalHeader().setVisible(False)
        self.grid.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
        self.grid.setTextElideMode(Qt.TextElideMode.ElideRight)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.caption)
        layout.addWidget(self.grid, 1)

    def clear_samples(self) -> None:
        """Empty, for another run."""
        self.samples.clear()
        self.show_table()

    def follow(self, events: list[dict[str, Any]]) -> None:
        """Read the run's events not read yet; redrawn when a sample arrived (the newest
        checkpoint is scrolled into view)."""
        if self.samples.add_events(events):
            self.show_table()
            if self.grid.columnCount():
                last = self.grid.columnCount() - 1
                self.grid.scrollToItem(self.grid.item(0, last) or QTableWidgetItem())

    def set_table(self, samples: SamplesTable) -> None:
        """Show a table made elsewhere (Compare: the same inputs across runs)."""
        self.samples = samples
        self.show_table()

    def show_table(self) -> None:
        table = self.samples
        grid = self.grid
        grid.clear()
        if not table.columns:
            grid.setRowCount(0)
            grid.setColumnCount(0)
            self.caption.setText(self.empty)
            return
        fixed = ["Input"] + (["Target"] if table.has_targets else [])
        grid.setColumnCount(len(fixed) + len(table.columns))
        grid.setRowCount(len(table.inputs))
        grid.setHorizontalHeaderLabels(fixed + [c.heading for c in table.columns])
        for r, text in enumerate(table.inputs):
            grid.setItem(r, 0, _item(text, text))
            if table.has_targets:
                target = table.target(r)
                grid.setItem(r, 1, _item(target, target or "no target for this input"))
            for c, column in enumerate(table.columns):
                cell = table.cells.get((column, text))
                if cell is None:
                    continue
                tip = f"{column.heading.replace(chr(10), ' · ')}\n{cell.output or '(empty)'}"
                if cell.score is not None:
                    tip += f"\nscore {cell.score:.3f}"
                item = _item(cell.text, tip)
                if cell.right is not None:
                    item.setBackground(RIGHT if cell.right else WRONG)
                    item.setForeground(QColor("black"))
                grid.setItem(r, len(fixed) + c, item)
        header = grid.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        grid.resizeColumnsToContents()
        grid.setColumnWidth(0, min(grid.columnWidth(0), INPUT_WIDTH))
        for c in range(1, grid.columnCount()):
            grid.setColumnWidth(c, min(grid.columnWidth(c), 160))
        steps = len(table.columns)
        self.caption.setText(
            f"{len(table.inputs)} input{'s' if len(table.inputs) != 1 else ''} × "
            f"{steps} checkpoint{'s' if steps != 1 else ''}. Green: the answer is the "
            "target; red: it is not. Hover a cell for the whole answer."
        )


def _item(text: str, tip: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text.replace("\n", " ⏎ "))
    item.setToolTip(tip)
    return item
