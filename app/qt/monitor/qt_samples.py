"""The samples table (issue 31, item 3): the model's answers on the plan's fixed inputs,
a row per input and a column per checkpoint (stage, step), so a person sees an answer
change across the plan. The monitor feeds it the run's events as they arrive; Compare
shows the same inputs across runs. The data is app/model/samples.py."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
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
INPUT_WIDTH, MIN_INPUT_WIDTH = 220, 110  # the inputs' column (pixels); the text: its tooltip
ELIDE = Qt.TextElideMode.ElideRight
RIGHT, WRONG = QColor.fromHsvF(0.33, 0.18, 1.0), QColor.fromHsvF(0.0, 0.16, 1.0)


class QtSamplesTable(QWidget):
    """Inputs down (the rows' headers), checkpoints across; the target first when the rows
    hold one.
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
        # The inputs are the rows' headers: they stay in view while the checkpoints scroll.
        rows = self.grid.verticalHeader()
        self.input_width = INPUT_WIDTH
        rows.setMaximumWidth(self.input_width)
        rows.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.grid.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
        self.grid.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.pinned = True
        # By pixel: a range that follows every column width, so the header and the cells
        # move together when the newest checkpoint is pinned into view.
        self.grid.setHorizontalScrollMode(QTableWidget.ScrollMode.ScrollPerPixel)
        bar = self.grid.horizontalScrollBar()
        bar.rangeChanged.connect(self._range_changed)
        # After the action has moved the bar (actionTriggered comes before the move).
        bar.actionTriggered.connect(lambda _: QTimer.singleShot(0, self, self._scrolled))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.caption)
        layout.addWidget(self.grid, 1)

    def clear_samples(self) -> None:
        """Empty, for another run."""
        self.samples.clear()
        self.pinned = True
        self.show_table()

    def follow(self, events: list[dict[str, Any]]) -> None:
        """Read the run's events not read yet; redrawn when a sample arrived (the newest
        checkpoint is scrolled into view)."""
        if self.samples.add_events(events):
            self.show_table()

    def _range_changed(self, _low: int, high: int) -> None:
        # The newest checkpoint stays in view (new columns, a resize, the tab shown) until
        # the person scrolls away from it; scrolling back to the end pins it again.
        if self.pinned:
            self.grid.horizontalScrollBar().setValue(high)

    def _scrolled(self) -> None:
        bar = self.grid.horizontalScrollBar()
        self.pinned = bar.value() >= bar.maximum()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        # The inputs take at most 40% of a narrow panel, so checkpoints stay in view.
        width = max(MIN_INPUT_WIDTH, min(INPUT_WIDTH, int(self.width() * 0.4)))
        if width != self.input_width:
            self.input_width = width
            self.grid.verticalHeader().setMaximumWidth(width)
            self.show_table()

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
        fixed = ["Target"] if table.has_targets else []
        grid.setColumnCount(len(fixed) + len(table.columns))
        grid.setRowCount(len(table.inputs))
        grid.setHorizontalHeaderLabels(fixed + [c.heading for c in table.columns])
        metrics = grid.verticalHeader().fontMetrics()
        for r, text in enumerate(table.inputs):
            shown = metrics.elidedText(text.replace("\n", " ⏎ "), ELIDE, self.input_width - 14)
            grid.setVerticalHeaderItem(r, _item(shown, text))
            if table.has_targets:
                target = table.target(r)
                grid.setItem(r, 0, _item(target, target or "no target for this input"))
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
        widest = 240 if any(c.run for c in table.columns) else 160  # Compare names runs
        for c in range(grid.columnCount()):
            grid.setColumnWidth(c, min(grid.columnWidth(c), widest))
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
