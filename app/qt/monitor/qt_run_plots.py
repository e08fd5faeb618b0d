"""The monitor's plots: loss (train and eval) large, learning rate, gradient norm, throughput
and evaluation metrics small and linked on the global-step axis, GPU memory and
utilisation over time; smoothing and log-scale controls. Redrawn from the run model on the
monitor's timer, only the series that changed."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.model.curve import Curve
from app.model.run_series import RunSeries
from app.qt.qt_curve_legend import SeriesColours
from app.qt.qt_curve_plot import ODD_COLOUR, QtCurvePlot
from app.qt.qt_elided_label import QtElidedLabel

# Which plot shows a series; evaluation points are few, so they are drawn with markers.
# A distillation's parts (task, KD, hidden-state) are drawn beside its loss.
LOSS_KEYS = ("train/loss", "eval/loss", "train/loss_task", "train/loss_kd", "train/loss_hidden")
# Scores of a distillation's teacher on the same eval rows, once per stage, and of the
# held-out test split, once at the end of a stage: markers beside the eval/ curves.
TEACHER = "teacher/"
ONCE = (TEACHER, "test/")
# A preference stage's rewards and log-probabilities, per step, beside its win rate.
PREFERENCE_KEYS = tuple(
    f"train/{k}"
    for k in (
        "reward_margin",
        "reward_accuracy",
        "reward_chosen",
        "reward_rejected",
        "logp_chosen",
        "logp_rejected",
    )
)
SMALL_PLOTS = (
    ("Learning rate", "lr", ("train/lr",)),
    ("Gradient norm", "norm", ("train/grad_norm",)),
    ("Throughput", "samples/s", ("perf/samples_per_s",)),
    ("Evaluation", "", ()),  # every eval/ key but the loss
)
# What an empty plot says instead of showing bare axes.
HINTS = {
    "Loss": "The loss appears here once the run logs its first step.",
    "Learning rate": "No learning rate logged yet.",
    "Gradient norm": "No gradient norm logged yet.",
    "Throughput": "No throughput logged yet.",
    "Evaluation": "No evaluation yet.",
}


# Evaluation metrics between 0 and 1, shown at first; the others start hidden (legend click).
RATES = ("accuracy", "f1", "precision", "recall", "reward_accuracy", "reward_margin")
# Metrics that are probabilities: their plot's y axis stays within [0, 1].
UNIT = ("accuracy", "f1", "precision", "recall", "reward_accuracy")


def is_probability(key: str) -> bool:
    parts = key.split("/")
    return len(parts) > 1 and parts[1] in UNIT


def plot_for(key: str) -> str | None:
    """Title of the plot a series belongs to."""
    # A joint stage's member losses (train/loss/<member>, eval/loss/<member>) and its
    # mutual term beside the total.
    if key in LOSS_KEYS or key.startswith(
        ("train/loss/", "eval/loss/", "train/loss_mutual", "test/loss")
    ):
        return "Loss"
    for title, _, keys in SMALL_PLOTS:
        if key in keys:
            return title
    if key in PREFERENCE_KEYS:
        return "Evaluation"
    if key.startswith("eval/") or (key.startswith(ONCE) and key != "teacher/parameters"):
        return "Evaluation"
    return None


class QtRunPlots(QWidget):
    """All curves of one run."""

    smoothingChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # One colour per series for the whole run, the same in every plot.
        self.colours = SeriesColours(reserved=(ODD_COLOUR,))
        self.loss = QtCurvePlot(
            "Loss", "loss", legend="right", hint=HINTS["Loss"], colours=self.colours
        )
        self.loss.setObjectName("lossPlot")
        self.loss.setAccessibleName("Loss curves")
        self._first_colours()
        self.plots: dict[str, QtCurvePlot] = {"Loss": self.loss}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for column, (title, unit, _) in enumerate(SMALL_PLOTS):
            # One curve each, named by the title, except Evaluation: its several metrics are
            # listed beside the plot, so no legend covers the points.
            evaluation = title == "Evaluation"
            plot = QtCurvePlot(
                title,
                unit,
                legend="right" if evaluation else "none",
                strip="eval/" if evaluation else "",
                hint=HINTS[title],
                colours=self.colours,
            )
            plot.setMinimumHeight(170)  # its width: what its axes need (minimumSizeHint)
            self.plots[title] = plot
            grid.addWidget(plot, 0, column)
            grid.setColumnStretch(column, 5 if evaluation else 3)  # room for its legend
            # The small plots show the loss plot's steps, never their own autorange.
            plot.getViewBox().enableAutoRange(x=False)
        self.curves: dict[str, Curve] = {}
        self.weight = 0.0
        # Every plot shows the same steps: zooming or panning one moves the others (by
        # value: pyqtgraph's own link maps screen positions, wrong for plots side by side).
        self._linking = False
        for plot in self.plots.values():
            plot.getViewBox().sigXRangeChanged.connect(
                lambda box, x_range, source=plot: self._follow_zoom(source, x_range)
            )

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("smoothingSlider")
        self.smoothing.setAccessibleName("Smoothing")
        self.smoothing.setRange(0, 99)
        self.smoothing.setMinimumWidth(80)  # a usable handle on a small screen
        self.smoothing.setMaximumWidth(160)
        self.smoothing.setToolTip("Exponential moving average of the curves (0 = raw points)")
        self.smoothing_value = QLabel("0.00")
        self.smoothing.valueChanged.connect(
            lambda v: (
                self.smoothing_value.setText(f"{v / 100:.2f}"),
                self.smoothingChanged.emit(v / 100),
            )
        )
        self.log_y = QCheckBox("Log scale")
        self.log_y.setObjectName("logScale")
        self.log_y.toggled.connect(self.set_log_y)
        reset = QPushButton("Show all")
        reset.setToolTip("Zoom out to the whole run (the view then follows new points)")
        reset.clicked.connect(self.show_all)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing)
        bar.addWidget(self.smoothing_value)
        bar.addSpacing(16)
        bar.addWidget(self.log_y)
        bar.addWidget(reset)
        bar.addSpacing(16)
        self.help = QtElidedLabel(
            "Drag to pan, wheel to zoom, hover for values; click a legend entry to hide a curve."
        )
        bar.addWidget(self.help, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.loss, 3)
        layout.addLayout(grid, 2)

    def _first_colours(self) -> None:
        # The main curves take the first colours whatever arrives first.
        for key in ("train/loss", "eval/loss"):
            self.colours.colour(key)

    def set_log_y(self, on: bool) -> None:
        for title in ("Loss", "Gradient norm"):
            self.plots[title].set_log_y(on)

    def _follow_zoom(self, source: QtCurvePlot, x_range) -> None:
        """The loss plot leads (its autorange covers the run); a small plot zoomed by hand
        takes the loss plot, and so every plot, to its range."""
        if self._linking:
            return
        self._linking = True
        try:
            if source is not self.loss:
                if source.getViewBox().autoRangeEnabled()[0]:  # its own "A" button
                    source.getViewBox().enableAutoRange(x=False)
                    self.loss.enableAutoRange(x=True)
                    x_range = self.loss.getViewBox().viewRange()[0]
                else:
                    self.loss.setXRange(*x_range, padding=0)
            for plot in self.plots.values():
                if plot is not self.loss and plot is not source:
                    plot.setXRange(*x_range, padding=0)
            if source is not self.loss:
                source.setXRange(*x_range, padding=0)
        finally:
            self._linking = False

    def show_all(self) -> None:
        for plot in self.plots.values():
            plot.enableAutoRange(y=True)
        self.loss.enableAutoRange(x=True)
        self._follow_zoom(self.loss, self.loss.getViewBox().viewRange()[0])

    def clear(self) -> None:
        self.curves.clear()
        self.colours.clear()
        self._first_colours()
        for plot in self.plots.values():
            plot.clear_curves()
            plot.set_boundaries([])

    def redraw(self, run: RunSeries, dirty: set[str], weight: float) -> int:
        """Update the curves of the changed series; returns how many were redrawn."""
        if weight != self.weight:
            self.weight, dirty = weight, set(run.series) | dirty
        if "@stages" in dirty:
            dirty |= set(run.series)
            marks = run.boundaries()
            for title, plot in self.plots.items():
                plot.set_boundaries(marks if len(marks) > 1 else [], labels=title == "Loss")
        drawn = 0
        # train/ before eval/: colours follow first appearance, and train/loss is the main curve.
        for key in sorted(
            (k for k in dirty if not k.startswith("@")),
            key=lambda k: (not k.startswith("train/"), k),
        ):
            title = plot_for(key)
            if title is None:
                continue
            curve = self.curves.setdefault(key, Curve(key))
            # Sparse evaluation points and the schedule's learning rate are never smoothed.
            smooth = key not in ("train/lr",) and not key.startswith(("eval/", *ONCE))
            change = curve.sync(run, weight if smooth else 0.0)
            if not change:
                continue
            x, y = curve.arrays(smoothed=True)
            shadow = curve.raw.values if curve.weight > 0 else None
            evaluation = key.startswith(("eval/", *ONCE))
            plot = self.plots[title]
            new = key not in plot.curves
            # A test score is a marker in the colour of its eval/ curve, out of the legend
            # (the hover names it): a joint stage's members would double the legend.
            twin = "eval/" + key.removeprefix("test/") if key.startswith("test/") else None
            marker = twin is not None and twin in plot.curves
            plot.set_curve(
                key,
                x,
                y,
                shadow,
                grown=change == "grown",
                symbols=evaluation,
                colour=self.colours.colour(twin if marker else key),
                legend=not marker,
                unit=is_probability(key),
            )
            plot.set_odd_bands(key, curve.odd_bands())
            if new and title == "Evaluation" and key.split("/")[1] not in RATES:
                plot.curves[key].setVisible(False)  # perplexity & co. would flatten the rates
            drawn += 1
        return drawn
