"""The Sweep view (`QtSweepView`) over `app.model.sweep_view.SweepViewModel`: a sweep
picker, Stop and Resume, the trials table (sortable by any column), the objective over
trials with the running best and the target, every trial's evaluations by step with the
running trial's training loss, a parameter-vs-objective scatter, "Open best trial's plan"
and "Compare selected". It refreshes from the store every second while the sweep runs."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model.sweep_view import SweepViewModel, TrialRow, short_path

STATUS_COLOURS = {
    "finished": "#0072B2",
    "running": "#009E73",
    "pruned": "#E69F00",
    "stopped": "#999999",
    "failed": "#D55E00",
}
EMPTY_TEXT = (
    "No sweeps yet: add a sweep to a plan with Run → Sweep… and press Run sweep "
    "(or run `stagelab sweep PLAN`; see docs/sweeps.md)."
)


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


def log_ticks(low: float, high: float) -> list[list[tuple[float, str]]]:
    """Ticks of a log axis from `low` to `high` (positions in log10): 1, 2 and 5 × 10^k
    labelled, the other multiples as unlabelled minor ticks."""
    if not (low > 0 and high > 0):
        return [[]]
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    span = (math.log10(low) - 0.2, math.log10(high) + 0.2)
    major, minor = [], []
    for power in range(first, last + 1):
        for digit in range(1, 10):
            value = digit * 10.0**power
            where = math.log10(value)
            if not span[0] <= where <= span[1]:
                continue
            if digit == 1 or digit in (2, 5) and last - first <= 3:
                major.append((where, f"{value:g}"))
            else:
                minor.append((where, ""))
    return [major, minor]


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class QtSweepView(QWidget):
    """A sweep's trials and plots; `open_sweep` shows one."""

    openPlan = Signal(str, str, str)  # plan text, plan folder, name
    compareRuns = Signal(list)
    openRun = Signal(str)
    stopRequested = Signal(str)  # sweep id
    resumeRequested = Signal(str)  # sweep id

    def __init__(self, model: SweepViewModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sweepView")
        self.setAccessibleName("Sweep")
        self.model = model
        self.picker = QComboBox()
        self.picker.setObjectName("sweepPicker")
        self.picker.activated.connect(lambda i: self.open_sweep(self.picker.itemData(i)))
        self.summary = QLabel(EMPTY_TEXT)
        self.summary.setWordWrap(True)
        self.best_button = QPushButton("Open best trial's plan")
        self.best_button.clicked.connect(self._open_best)
        self.compare_button = QPushButton("Compare selected")
        self.compare_button.clicked.connect(self._compare)
        self.stop_button = QPushButton("■  Stop sweep")
        self.stop_button.setObjectName("stopSweep")
        self.stop_button.setToolTip(
            "Stop the sweep: running trials stop at a checkpoint; Resume continues them"
        )
        self.stop_button.clicked.connect(lambda: self.stopRequested.emit(self.model.sweep_id))
        self.resume_button = QPushButton("▶  Resume sweep")
        self.resume_button.setObjectName("resumeSweep")
        self.resume_button.setToolTip(
            "Continue the sweep: stopped trials from their checkpoints, then new trials "
            "while budget is left"
        )
        self.resume_button.clicked.connect(lambda: self.resumeRequested.emit(self.model.sweep_id))
        self._process = None  # the sweep process this window started, until it claims
        self._names: dict[str, str] = {}  # experiment names, for the picker
        top = QHBoxLayout()
        top.addWidget(QLabel("Sweep"))
        top.addWidget(self.picker, 1)
        top.addWidget(self.stop_button)
        top.addWidget(self.resume_button)
        top.addWidget(self.best_button)
        top.addWidget(self.compare_button)

        self.table = QTableWidget()
        self.table.setObjectName("trialsTable")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        # Trials in the order they ran until a person sorts otherwise.
        self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.table.cellDoubleClicked.connect(self._open_row)

        pal = QApplication.palette()
        self._fg = pal.color(QPalette.ColorRole.Text)
        self.objective_plot = self._plot("Objective over trials", "trial")
        self.curves_plot = self._plot("Trials by step", "step")
        self.param_box = QComboBox()
        self.param_box.setObjectName("scatterParameter")
        self.param_box.currentIndexChanged.connect(lambda _: self._draw_scatter())
        self.scatter_plot = self._plot("Parameter against objective", "")
        scatter_side = QWidget()
        scatter_layout = QVBoxLayout(scatter_side)
        scatter_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Parameter"))
        row.addWidget(self.param_box, 1)
        scatter_layout.addLayout(row)
        scatter_layout.addWidget(self.scatter_plot, 1)

        # One key for the three plots, above them: legends inside covered points.
        self.key_label = QLabel(self._key_text())
        self.key_label.setObjectName("sweepPlotKey")
        self.key_label.setWordWrap(True)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.objective_plot)
        plots.addWidget(self.curves_plot)
        plots.addWidget(scatter_side)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self.table)
        plot_side = QWidget()
        plot_layout = QVBoxLayout(plot_side)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_layout.addWidget(self.key_label)
        plot_layout.addWidget(plots, 1)
        body.addWidget(plot_side)
        body.setSizes([220, 480])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(body, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._tick)
        self._update_buttons()

    def _key_text(self) -> str:
        dots = " ".join(
            f'<span style="color:{colour}">●</span>&nbsp;{status}'
            for status, colour in STATUS_COLOURS.items()
        )
        return (
            f"{dots} &nbsp;·&nbsp; black line: best so far &nbsp;·&nbsp; trials by step: "
            "each trial's evaluations, the running one bold, its training loss dashed"
        )

    def _plot(self, title: str, x_label: str) -> pg.PlotWidget:
        pal = QApplication.palette()
        plot = pg.PlotWidget(background=pal.color(QPalette.ColorRole.Base))
        plot.setObjectName(f"plot_{title.lower().replace(' ', '_')}")
        plot.setAccessibleName(title)
        item = plot.getPlotItem()
        item.setTitle(title, color=self._fg.name(), size="10pt")
        if x_label:
            item.setLabel("bottom", x_label)
        item.getAxis("left").enableAutoSIPrefix(False)
        item.getAxis("bottom").enableAutoSIPrefix(False)
        return plot

    # -- choosing a sweep ---------------------------------------------------------------------
    def reload_sweeps(self) -> None:
        """List the workspace's sweeps in the picker (newest first); open the newest if none
        is shown yet."""
        from engine.store import queries

        sweeps = list(reversed(queries.list_sweeps(self.model.store())))
        names = {e.id: e.name for e in queries.list_experiments(self.model.store())}
        self._names = names
        self.picker.blockSignals(True)
        self.picker.clear()
        for sw in sweeps:
            label = f"{names.get(sw.experiment_id, '?')} · {sw.id} · {sw.status} · {len(sw.trials)} trials"
            self.picker.addItem(label, sw.id)
        self.picker.blockSignals(False)
        if self.model.sweep_id is None and sweeps:
            self.open_sweep(sweeps[0].id)
        elif self.model.sweep_id is not None:
            self.picker.setCurrentIndex(max(0, self.picker.findData(self.model.sweep_id)))

    def open_sweep(self, sweep_id: str, process=None) -> None:
        """Show a sweep; follow it while it runs. `process` is its sweep process when this
        window just started it: the sweep reads 'starting' until the process claims it (or
        ends)."""
        if process is not None or sweep_id != self.model.sweep_id:
            self._process = process
        self._check_process()
        self.model.open(sweep_id)
        self.picker.setCurrentIndex(max(0, self.picker.findData(sweep_id)))
        self._redraw()
        if self.model.live:
            self.timer.start()

    def refresh_now(self) -> None:
        """Read the sweep again at once (after Stop)."""
        self._tick()
        if self.model.live and not self.timer.isActive():
            self.timer.start()

    def _check_process(self) -> None:
        """Starting while the started process lives and has not claimed the sweep."""
        process = self._process
        if process is not None and process.poll() is not None:
            self._process = process = None  # ended (and reaped)
        claimed = self.model.info is not None and self.model.info.status == "running"
        if process is not None and claimed:
            self._process = process = None  # the record says the rest from now on
        self.model.starting = process is not None

    def _tick(self) -> None:
        self._check_process()
        changed = self.model.refresh()
        self._check_process()
        if changed:
            self._redraw()
        else:
            self._draw_curves()  # the running trial's loss grows between evaluations
            self._update_buttons()
        if not self.model.live:
            self.timer.stop()
            self._redraw()

    # -- drawing ------------------------------------------------------------------------------
    def _redraw(self) -> None:
        self.summary.setText(self.model.summary())
        index = self.picker.findData(self.model.sweep_id)
        if index >= 0 and self.model.info is not None:
            name = self._names.get(self.model.info.experiment_id, "?")
            self.picker.setItemText(
                index,
                f"{name} · {self.model.sweep_id} · {self.model.status} · "
                f"{len(self.model.rows)} trials",
            )
        self._fill_table()
        paths = self.model.param_paths
        if [self.param_box.itemData(i) for i in range(self.param_box.count())] != paths:
            self.param_box.blockSignals(True)
            self.param_box.clear()
            for path in paths:
                self.param_box.addItem(short_path(path), path)
            self.param_box.blockSignals(False)
        self._draw_objective()
        self._draw_curves()
        self._draw_scatter()
        self._update_buttons()

    def _fill_table(self) -> None:
        paths = self.model.param_paths
        headers = ["trial", "status", self.model.metric_label]
        headers += [short_path(p) for p in paths] + ["reused stages", "time (s)"]
        selected = set(self.selected_run_ids())
        sort_col = self.table.horizontalHeader().sortIndicatorSection()
        order = self.table.horizontalHeader().sortIndicatorOrder()
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(self.model.rows))
        best = self.model.best()
        for i, r in enumerate(self.model.rows):
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
                self.table.setItem(i, c, cell)
            if r.run_id in selected:
                self.table.selectRow(i)
        self.table.setSortingEnabled(True)
        if sort_col < len(headers):
            self.table.sortByColumn(sort_col, order)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def _draw_objective(self) -> None:
        plot = self.objective_plot
        plot.clear()
        item = plot.getPlotItem()
        item.setLabel("left", self.model.metric_label)
        numbers = [r.number for r in self.model.rows]
        step = max(1, len(numbers) // 12)
        item.getAxis("bottom").setTicks([[(n, str(n)) for n in numbers[::step]]])
        points = self.model.objective_points()
        for status in ("finished", "pruned", "stopped", "failed", "running"):
            mine = [(n, v) for n, v, s in points if s == status]
            if mine:
                colour = STATUS_COLOURS[status]
                plot.plot(
                    [n for n, _ in mine],
                    [v for _, v in mine],
                    pen=None,
                    symbol="o",
                    symbolSize=9,
                    symbolBrush=colour,
                    symbolPen=colour,
                    name=status,
                )
        xs, ys = self.model.running_best()
        if xs:
            plot.plot(
                xs,
                ys,
                pen=pg.mkPen(self._fg, width=2),
                stepMode=None,
                name="best so far",
            )
        if self.model.target is not None:
            line = pg.InfiniteLine(
                pos=self.model.target,
                angle=0,
                pen=pg.mkPen("#D55E00", width=1.5, style=Qt.PenStyle.DashLine),
                label=f"target {self.model.target:g}",
                labelOpts={"position": 0.1, "color": "#D55E00"},
            )
            plot.addItem(line)

    def _draw_curves(self) -> None:
        """Every trial's evaluations of the objective by step (the running one bold), and
        the running trial's training loss dashed."""
        plot = self.curves_plot
        plot.clear()
        item = plot.getPlotItem()
        losses = self.model.running_loss()
        label = self.model.metric_label + (" · train loss (dashed)" if losses else "")
        item.setLabel("left", label)
        named: set[str] = set()
        for number, status, steps, values in self.model.trial_curves():
            colour = STATUS_COLOURS.get(status, self._fg.name())
            running = status == "running"
            label = f"trial {number} (running)" if running else status
            plot.plot(
                steps,
                values,
                pen=pg.mkPen(colour, width=2.5 if running else 1.2),
                symbol="o" if running else None,
                symbolSize=5,
                symbolBrush=colour,
                symbolPen=colour,
                name=None if label in named else label,
            )
            named.add(label)
        for number, steps, values in losses:
            plot.plot(
                steps,
                values,
                pen=pg.mkPen(STATUS_COLOURS["running"], width=1.5, style=Qt.PenStyle.DashLine),
                name=f"trial {number} train loss",
            )

    def _draw_scatter(self) -> None:
        plot = self.scatter_plot
        plot.clear()
        path = self.param_box.currentData()
        if not path:
            return
        item = plot.getPlotItem()
        item.setLabel("bottom", short_path(path))
        item.setLabel("left", self.model.metric_label)
        xs, ys, statuses = self.model.scatter(path)
        log = self.model.is_log(path)
        item.setLogMode(x=log, y=False)
        axis = item.getAxis("bottom")
        if log and xs:
            # pyqtgraph labels every 1..9 × 10^k on a short log axis: they ran together.
            axis.setTicks(log_ticks(min(xs), max(xs)))
        elif self.model.is_categorical(path):
            axis.setTicks([[(i, str(v)) for i, v in enumerate(self.model.choices(path))]])
        elif self.model.choices(path):  # a choice of numbers: ticks at the choices
            axis.setTicks([[(float(v), str(v)) for v in self.model.choices(path)]])
        else:
            axis.setTicks(None)
        for status in ("finished", "pruned", "stopped", "failed", "running"):
            mine = [(x, y) for x, y, s in zip(xs, ys, statuses, strict=True) if s == status]
            if mine:
                colour = STATUS_COLOURS[status]
                plot.plot(
                    [x for x, _ in mine],
                    [y for _, y in mine],
                    pen=None,
                    symbol="o",
                    symbolSize=9,
                    symbolBrush=colour,
                    symbolPen=colour,
                    name=status,
                )
        if self.model.target is not None:
            plot.addItem(
                pg.InfiniteLine(
                    pos=self.model.target,
                    angle=0,
                    pen=pg.mkPen("#D55E00", width=1.5, style=Qt.PenStyle.DashLine),
                )
            )

    # -- actions ------------------------------------------------------------------------------
    def selected_run_ids(self) -> list[str]:
        """Runs of the selected trials, in table order."""
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        found = []
        for row in rows:
            item = self.table.item(row, 0)
            run_id = item.data(Qt.ItemDataRole.UserRole) if item else None
            if run_id and run_id not in found:
                found.append(run_id)
        return found

    def _update_buttons(self) -> None:
        self.stop_button.setEnabled(self.model.can_stop)
        self.resume_button.setEnabled(self.model.can_resume)
        self.best_button.setEnabled(self.model.best() is not None)
        self.compare_button.setEnabled(len(self.selected_run_ids()) >= 2)

    def _open_best(self) -> None:
        best = self.model.best()
        if best is not None:
            self.openPlan.emit(*self.model.plan_of(best))

    def _compare(self) -> None:
        runs = self.selected_run_ids()
        if len(runs) >= 2:
            self.compareRuns.emit(runs)

    def _open_row(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self.openRun.emit(item.data(Qt.ItemDataRole.UserRole))

    def row_for(self, number: int) -> TrialRow | None:
        """The model's row of a trial."""
        return next((r for r in self.model.rows if r.number == number), None)
