"""An ensemble stage's report: each member and the ensemble on the same rows, as a table
(metrics, learned or fixed weights) and a bar chart of accuracy, the ensemble's bar set
apart. One ensemble stage at a time; a run with several has a picker."""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.qt.qt_look import kind_color

METRICS = ("accuracy", "f1", "precision", "recall", "loss")
# Metrics between 0 and 1: their bars share a [0, 1] axis.
BOUNDED = ("accuracy", "f1", "precision", "recall")


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
        # Its whole text, however many lines (the table and the bars share the rest).
        self.caption.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
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
        # Bars lie flat, names on the left: a side panel is narrow, and members' names
        # side by side under upright bars ran into each other.
        self.bars.getPlotItem().setLabel("bottom", "accuracy")
        self.bars.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)  # loss 0.4, not 400
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
        # A merge stage reports as an ensemble does (engine.recipes.merge): its row is the
        # merged model.
        own = "merged" if report.get("method") else "ensemble"
        rows = [*members.items(), (own, report.get("ensemble") or {})]
        shown = [m for m in METRICS if any(m in values for _, values in rows)]
        columns = shown + (["weight"] if weights else [])
        # The bars show accuracy, else the first metric that was evaluated (said in words).
        charted = "accuracy" if "accuracy" in shown else (shown[0] if shown else None)
        caption = (
            f"{name}: {report.get('combiner')} of {len(members)} members on "
            f"{report.get('rows')} {report.get('split')} rows, all scored on the same rows."
        )
        notes = missing_in_words(rows, shown, charted)
        self.caption.setText(" ".join([caption, *notes]))
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
                if value is None and column != "weight":
                    item.setToolTip(f"{row} has no {column}: not recorded")
                if row == own:
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        plot = self.bars.getPlotItem()
        plot.setLabel("bottom", charted or "")
        if charted is None:
            return
        # Only recorded, finite values get a bar: a missing one is named in the caption.
        # The first row on top, as in the table.
        top = len(rows) - 1
        bars = [
            (top - i, values[charted], row)
            for i, (row, values) in enumerate(rows)
            if isinstance(values.get(charted), (int, float)) and math.isfinite(values[charted])
        ]
        widths = [w for _, w, _ in bars]
        # Members in the train stages' colour, the ensemble in its own.
        combined = "merge" if own == "merged" else "ensemble"
        brushes = [kind_color(combined if row == own else "train") for _, _, row in bars]
        if bars:
            self.bars.addItem(
                pg.BarGraphItem(
                    x0=0.0, y=[y for y, _, _ in bars], width=widths, height=0.6, brushes=brushes
                )
            )
        axis = plot.getAxis("left")
        names = [(top - i, _short(row, 24)) for i, (row, _) in enumerate(rows)]
        axis.setTicks([names])
        metrics = QFontMetrics(axis.style.get("tickFont") or self.font())
        axis.setWidth(max(metrics.horizontalAdvance(n) for _, n in names) + 14 if names else 40)
        self.bars.setYRange(-0.6, top + 0.6, padding=0)
        if charted in BOUNDED:
            low = min(widths) if widths else 0.0
            self.bars.setXRange(max(0.0, low - 0.1), 1.0, padding=0)
        else:
            self.bars.setXRange(0.0, max(widths, default=1.0) * 1.1 or 1.0, padding=0)


def missing_in_words(
    rows: list[tuple[str, dict[str, float]]], shown: list[str], charted: str | None
) -> list[str]:
    """Sentences for what the table and bars cannot show: accuracy not evaluated, and each
    row without a value of a shown metric (so a blank is never read as a score)."""
    notes = []
    if charted is None:
        notes.append("No metric was evaluated: list some in the stage's eval.metrics.")
    elif charted != "accuracy":
        notes.append(
            f"Accuracy was not evaluated (not in the stage's eval.metrics); the bars show "
            f"{charted}."
        )
    for metric in shown:
        lacking = [row for row, values in rows if metric not in values]
        if lacking:
            notes.append(f"{_names(lacking)} recorded no {metric} (— in the table).")
        odd = [
            row
            for row, values in rows
            if isinstance(values.get(metric), float) and not math.isfinite(values[metric])
        ]
        if odd and metric == charted:
            notes.append(f"{_names(odd)} scored {metric} nan or infinite (no bar).")
    return notes


def _short(name: str, limit: int = 14) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _names(rows: list[str]) -> str:
    return rows[0] if len(rows) == 1 else ", ".join(rows[:-1]) + " and " + rows[-1]
