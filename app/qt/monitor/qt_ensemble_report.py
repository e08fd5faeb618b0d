"""An ensemble stage's report: each member and the ensemble on the same rows, as a table
(metrics, learned or fixed weights) and a bar chart of accuracy, the ensemble's bar set
apart. One ensemble stage at a time; a run with several has a picker."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.qt.qt_look import kind_color

METRICS = ("accuracy", "f1", "precision", "recall", "loss")


class QtEnsembleReport(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("ensembleReport")
        self.setAccessibleName("Ensemble report")
        self.reports: dict[str, dict[str, Any]] = {}
        self.picker = QComboBox()
        self.picker.setAccessibleName("Ensemble stage")
        self.picker.currentTextChanged.connect(self._show)
        self.caption = QLabel("No ensemble stage has reported yet.")
        self.caption.setWordWrap(True)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        pal = QApplication.palette()  # the curve plots' colours, light or dark
        self.bars = pg.PlotWidget(background=pal.color(QPalette.ColorRole.Base))
        for side in ("left", "bottom"):
            axis = self.bars.getPlotItem().getAxis(side)
            axis.setPen(pal.color(QPalette.ColorRole.Text))
            axis.setTextPen(pal.color(QPalette.ColorRole.Text))
        self.bars.setMenuEnabled(False)
        self.bars.setMouseEnabled(x=False, y=False)
        self.bars.setMinimumHeight(140)
        self.bars.getPlotItem().setLabel("left", "accuracy")
        layout = QVBoxLayout(self)
        layout.addWidget(self.picker)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.bars, 1)

    def show_reports(self, reports: dict[str, dict[str, Any]]) -> None:
        """Reports by stage name (an `ensemble` event's data each); keeps the pick."""
        current = self.picker.currentText()
        self.reports = dict(reports)
        self.picker.blockSignals(True)
        self.picker.clear()
        self.picker.addItems(list(self.reports))
        self.picker.blockSignals(False)
        self.picker.setVisible(len(self.reports) > 1)
        pick = current if current in self.reports else next(reversed(self.reports), "")
        self.picker.setCurrentText(pick)
        self._show(pick)

    def _show(self, name: str) -> None:
        report = self.reports.get(name)
        self.bars.clear()
        if not report:
            self.table.setRowCount(0)
            self.caption.setText("No ensemble stage has reported yet.")
            return
        members: dict[str, dict[str, float]] = report.get("members") or {}
        weights: dict[str, float] = report.get("weights") or {}
        rows = [*members.items(), ("ensemble", report.get("ensemble") or {})]
        shown = [m for m in METRICS if any(m in values for _, values in rows)]
        columns = shown + (["weight"] if weights else [])
        self.caption.setText(
            f"{name}: {report.get('combiner')} of {len(members)} members on "
            f"{report.get('rows')} {report.get('split')} rows, all scored on the same rows."
        )
        self.table.setRowCount(len(rows))
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setVerticalHeaderLabels([row for row, _ in rows])
        bold = QFont()
        bold.setBold(True)
        for r, (row, values) in enumerate(rows):
            for c, column in enumerate(columns):
                value = weights.get(row) if column == "weight" else values.get(column)
                item = QTableWidgetItem("—" if value is None else f"{value:.4f}")
                if row == "ensemble":
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        heights = [values.get("accuracy", 0.0) for _, values in rows]
        # Members in the train stages' colour, the ensemble in its own.
        brushes = [kind_color("ensemble" if row == "ensemble" else "train") for row, _ in rows]
        self.bars.addItem(
            pg.BarGraphItem(x=list(range(len(rows))), height=heights, width=0.6, brushes=brushes)
        )
        axis = self.bars.getPlotItem().getAxis("bottom")
        # Members by their number (names are in the table): long names would overlap.
        ticks = [
            (i, row if row == "ensemble" else row.split("-", 1)[0])
            for i, (row, _) in enumerate(rows)
        ]
        axis.setTicks([ticks])
        low = min(heights) if heights else 0.0
        self.bars.setYRange(max(0.0, low - 0.1), 1.0)
