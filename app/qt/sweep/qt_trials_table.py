"""A sweep's trials as a table (`QtTrialsTable`): one row a trial (number, status,
objective, each swept setting, reused stages, time), sortable by any column with empty
cells last, the best trial's objective in bold; its rows carry their run ids."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.model.sweep_view import SweepViewModel, short_path
from engine.store.status import TrialStatus

STATUS_COLOURS = {
    TrialStatus.FINISHED: "#0072B2",
    TrialStatus.RUNNING: "#009E73",
    TrialStatus.PRUNED: "#E69F00",
    TrialStatus.STOPPED: "#999999",
    TrialStatus.FAILED: "#D55E00",
}


class _Item(QTableWidgetItem):
    """A cell that sorts by a value of its own (numbers as numbers, None last)."""

    def __init__(self, text: str, key: tuple):
        super().__init__(text)
        self.key = key
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.key, getattr(other, "key", ())
        missing = (mine[:1] == (2,), theirs[:1] == (2,))
        if missing[0] != missing[1]:
            # Trials without a value stay at the bottom in either order.
            table = self.tableWidget()
            descending = (
                table is not None
                and table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
            )
            return missing[1] if not descending else missing[0]
        return mine < theirs


def _key(value) -> tuple:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class QtTrialsTable(QTableWidget):
    """The trials of the sweep a `SweepViewModel` holds; `show_trials` fills it again."""

    openRun = Signal(str)  # a row double-clicked: its run

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trialsTable")
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.verticalHeader().setVisible(False)
        self.setSortingEnabled(True)
        # Trials in the order they ran until a person sorts otherwise.
        self.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.cellDoubleClicked.connect(self._open_row)
        self._fg = QApplication.palette().color(QPalette.ColorRole.Text)

    def show_trials(self, sweep: SweepViewModel) -> None:
        """One row a trial of `sweep`, keeping the selection and the sort order."""
        paths = sweep.param_paths
        headers = ["trial", "status", sweep.metric_label]
        headers += [short_path(p) for p in paths] + ["reused stages", "time (s)"]
        selected = set(self.selected_run_ids())
        sort_col = self.horizontalHeader().sortIndicatorSection()
        order = self.horizontalHeader().sortIndicatorOrder()
        self.setSortingEnabled(False)
        self.clear()
        self.setColumnCount(len(headers))
        self.setHorizontalHeaderLabels(headers)
        self.setRowCount(len(sweep.rows))
        best = sweep.best()
        for i, r in enumerate(sweep.rows):
            cells = [
                _Item(str(r.number), _key(r.number)),
                _Item(r.status, (r.status,)),
                _Item(_show(r.objective), _key(r.objective)),
            ]
            cells += [_Item(_show(r.params.get(p)), _key(r.params.get(p))) for p in paths]
            cells.append(_Item(", ".join(r.reused) or "—", (len(r.reused),)))
            cells.append(_Item(_show(r.wall_s and round(r.wall_s, 1)), _key(r.wall_s)))
            cells[1].setForeground(QColor(STATUS_COLOURS.get(r.status, self._fg.name())))
            if best is not None and r.number == best.number:
                font = cells[2].font()
                font.setBold(True)
                cells[2].setFont(font)
                cells[0].setToolTip("best trial")
            for c, cell in enumerate(cells):
                cell.setData(Qt.ItemDataRole.UserRole, r.run_id)
                self.setItem(i, c, cell)
            if r.run_id in selected:
                self.selectRow(i)
        self.setSortingEnabled(True)
        if sort_col < len(headers):
            self.sortByColumn(sort_col, order)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def selected_run_ids(self) -> list[str]:
        """Runs of the selected trials, in table order."""
        rows = sorted({i.row() for i in self.selectedIndexes()})
        found = []
        for row in rows:
            item = self.item(row, 0)
            run_id = item.data(Qt.ItemDataRole.UserRole) if item else None
            if run_id and run_id not in found:
                found.append(run_id)
        return found

    def _open_row(self, row: int, _column: int) -> None:
        item = self.item(row, 0)
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self.openRun.emit(item.data(Qt.ItemDataRole.UserRole))
