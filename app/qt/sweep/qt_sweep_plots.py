"""A sweep's three plots side by side under one key (`QtSweepPlots`): the objective over
trials with the running best and the target, every trial's evaluations by step with the
running trial's training loss, and one swept setting against the objective."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model.sweep_view import SweepViewModel, short_path
from app.qt.sweep.qt_trials_table import STATUS_COLOURS
from engine.store.status import TrialStatus

# Dots of trials by status, the running ones last (on top).
DRAWING_ORDER = (
    TrialStatus.FINISHED,
    TrialStatus.PRUNED,
    TrialStatus.STOPPED,
    TrialStatus.FAILED,
    TrialStatus.RUNNING,
)

TARGET_COLOUR = "#D55E00"


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


def key_text() -> str:
    """The one key of the three plots (legends inside them covered points)."""
    dots = " ".join(
        f'<span style="color:{colour}">●</span>&nbsp;{status}'
        for status, colour in STATUS_COLOURS.items()
    )
    return (
        f"{dots} &nbsp;·&nbsp; black line: best so far &nbsp;·&nbsp; trials by step: "
        "each trial's evaluations, the running one bold, its training loss dashed"
    )


class QtSweepPlots(QWidget):
    """The plots of the sweep a `SweepViewModel` holds; `draw` draws them again."""

    def __init__(self, sweep: SweepViewModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.sweep = sweep
        self._fg = QApplication.palette().color(QPalette.ColorRole.Text)
        self.objective_plot = self._plot("Objective over trials", "trial")
        self.curves_plot = self._plot("Trials by step", "step")
        self.param_box = QComboBox()
        self.param_box.setObjectName("scatterParameter")
        self.param_box.currentIndexChanged.connect(lambda _: self.draw_scatter())
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
        self.key_label = QLabel(key_text())
        self.key_label.setObjectName("sweepPlotKey")
        self.key_label.setWordWrap(True)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.objective_plot)
        plots.addWidget(self.curves_plot)
        plots.addWidget(scatter_side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.key_label)
        layout.addWidget(plots, 1)

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

    def draw(self) -> None:
        """The parameter list, then every plot."""
        paths = self.sweep.param_paths
        if [self.param_box.itemData(i) for i in range(self.param_box.count())] != paths:
            self.param_box.blockSignals(True)
            self.param_box.clear()
            for path in paths:
                self.param_box.addItem(short_path(path), path)
            self.param_box.blockSignals(False)
        self.draw_objective()
        self.draw_curves()
        self.draw_scatter()

    def _status_points(self, plot: pg.PlotWidget, points) -> None:
        """(x, y, status) as dots coloured by status, the running ones drawn last."""
        points = list(points)
        for status in DRAWING_ORDER:
            mine = [(x, y) for x, y, s in points if s == status]
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

    def draw_objective(self) -> None:
        sweep, plot = self.sweep, self.objective_plot
        plot.clear()
        item = plot.getPlotItem()
        item.setLabel("left", sweep.metric_label)
        numbers = [r.number for r in sweep.rows]
        step = max(1, len(numbers) // 12)
        item.getAxis("bottom").setTicks([[(n, str(n)) for n in numbers[::step]]])
        self._status_points(plot, sweep.objective_points())
        xs, ys = sweep.running_best()
        if xs:
            plot.plot(
                xs,
                ys,
                pen=pg.mkPen(self._fg, width=2),
                stepMode=None,
                name="best so far",
            )
        if sweep.target is not None:
            line = pg.InfiniteLine(
                pos=sweep.target,
                angle=0,
                pen=pg.mkPen(TARGET_COLOUR, width=1.5, style=Qt.PenStyle.DashLine),
                label=f"target {sweep.target:g}",
                labelOpts={"position": 0.1, "color": TARGET_COLOUR},
            )
            plot.addItem(line)

    def draw_curves(self) -> None:
        """Every trial's evaluations of the objective by step (the running one bold), and
        the running trial's training loss dashed."""
        plot = self.curves_plot
        plot.clear()
        item = plot.getPlotItem()
        losses = self.sweep.running_loss()
        label = self.sweep.metric_label + (" · train loss (dashed)" if losses else "")
        item.setLabel("left", label)
        named: set[str] = set()
        for number, status, steps, values in self.sweep.trial_curves():
            colour = STATUS_COLOURS.get(status, self._fg.name())
            running = status == TrialStatus.RUNNING
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
                pen=pg.mkPen(
                    STATUS_COLOURS[TrialStatus.RUNNING], width=1.5, style=Qt.PenStyle.DashLine
                ),
                name=f"trial {number} train loss",
            )

    def draw_scatter(self) -> None:
        sweep, plot = self.sweep, self.scatter_plot
        plot.clear()
        path = self.param_box.currentData()
        if not path:
            return
        item = plot.getPlotItem()
        item.setLabel("bottom", short_path(path))
        item.setLabel("left", sweep.metric_label)
        xs, ys, statuses = sweep.scatter(path)
        log = sweep.is_log(path)
        item.setLogMode(x=log, y=False)
        axis = item.getAxis("bottom")
        if log and xs:
            # pyqtgraph labels every 1..9 × 10^k on a short log axis: they ran together.
            axis.setTicks(log_ticks(min(xs), max(xs)))
        elif sweep.is_categorical(path):
            axis.setTicks([[(i, str(v)) for i, v in enumerate(sweep.choices(path))]])
        elif sweep.choices(path):  # a choice of numbers: ticks at the choices
            axis.setTicks([[(float(v), str(v)) for v in sweep.choices(path)]])
        else:
            axis.setTicks(None)
        self._status_points(plot, zip(xs, ys, statuses, strict=True))
        if sweep.target is not None:
            plot.addItem(
                pg.InfiniteLine(
                    pos=sweep.target,
                    angle=0,
                    pen=pg.mkPen(TARGET_COLOUR, width=1.5, style=Qt.PenStyle.DashLine),
                )
            )
