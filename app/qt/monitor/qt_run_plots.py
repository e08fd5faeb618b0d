"""The monitor's panels: the plots a person chose (`PanelLayout`, app/model/panels.py),
the first one large, the others in rows under it, all on the same x (global step, wall
time or tokens seen) and linked in zoom, with one crosshair across them; smoothing, log
scale and the panel controls above. Redrawn from the run model on the monitor's timer,
only the series that changed."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from app.model.curve import Curve
from app.model.panels import X_LABELS, Panel, PanelLayout, default_layout
from app.model.run_series import RunSeries
from app.model.x_axis import x_map
from app.qt.monitor.qt_plots_bar import QtPlotsBar
from app.qt.qt_curve_legend import SeriesColours
from app.qt.qt_curve_plot import ODD_COLOUR, QtCurvePlot

# Scores of a distillation's teacher on the same eval rows, once per stage, and of the
# held-out test split, once at the end of a stage: markers beside the eval/ curves.
ONCE = ("teacher/", "test/")
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
X_NAMES = {"step": "step", "wall": "min", "tokens": "tokens"}  # in the crosshair's readout
PER_ROW = 4  # small panels side by side under the first


def is_probability(key: str) -> bool:
    parts = key.split("/")
    return len(parts) > 1 and parts[1] in UNIT


def plot_for(key: str) -> str | None:
    """Title of the default panel a series belongs to."""
    return next((p.title for p in default_layout().panels_for(key)), None)


def is_sparse(key: str) -> bool:
    """Evaluation points are few: drawn with markers, never smoothed."""
    return key.startswith(("eval/", *ONCE))


def legend_strip(panel: Panel) -> str:
    """The prefix every metric of the panel shares, which its legend leaves out."""
    if panel.title == "Evaluation":
        return "eval/"
    heads = {p.split("/")[0] for p in panel.patterns if not p.startswith("!")}
    return f"{heads.pop()}/" if len(heads) == 1 and len(panel.patterns) > 1 else ""


class QtRunPlots(QWidget):
    """All panels of one run."""

    smoothingChanged = Signal(float)
    layoutChanged = Signal(object)  # PanelLayout: the monitor saves it for the experiment

    def __init__(self, parent: QWidget | None = None, layout: PanelLayout | None = None):
        super().__init__(parent)
        # One colour per series for the whole run, the same in every panel.
        self.colours = SeriesColours(reserved=(ODD_COLOUR,))
        self._first_colours()
        self.panel_layout = layout or default_layout()
        self.default_panels = default_layout()  # the plan's stage kinds' (the monitor sets it)
        self.plots: dict[str, QtCurvePlot] = {}
        self.curves: dict[str, Curve] = {}
        self.weight = 0.0
        self.run: RunSeries | None = None
        self._linking = False
        self._remap_after, self._remap_pending = 0.0, False  # redraws by time or tokens
        self.bar = QtPlotsBar(self)
        # The bar's parts, as the monitor's callers and tests name them.
        self.smoothing, self.smoothing_value = self.bar.smoothing, self.bar.smoothing_value
        self.log_y, self.x_axis, self.help = self.bar.log_y, self.bar.x_axis, self.bar.help
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.bar)
        outer.addLayout(self.grid, 1)
        self._build_panels()
        self.bar.show_layout(self.panel_layout)

    @property
    def loss(self) -> QtCurvePlot:
        """The first (large) panel: its autorange leads the others' x."""
        return next(iter(self.plots.values()))

    def _first_colours(self) -> None:
        # The main curves take the first colours whatever arrives first.
        for key in ("train/loss", "eval/loss"):
            self.colours.colour(key)

    # -- panels -----------------------------------------------------------------------------

    def _build_panels(self) -> None:
        for plot in self.plots.values():
            self.grid.removeWidget(plot)
            plot.hide()
            plot.deleteLater()
        self.plots = {}
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 0)
        for column in range(self.grid.columnCount()):
            self.grid.setColumnStretch(column, 0)
        self._shown_axis = "step"
        panels = self.panel_layout.panels
        small = panels[1:]
        columns = max(1, min(PER_ROW, len(small)))
        for i, panel in enumerate(panels):
            several = len(panel.patterns) > 1 or any(c in "*?[" for c in "".join(panel.patterns))
            # One curve named by its title needs no legend (the default small plots); a
            # panel of one's own choosing lists even a single metric.
            named = not several and panel.title in HINTS
            plot = QtCurvePlot(
                panel.title,
                panel.unit,
                legend="none" if named and i > 0 else "right",
                strip=legend_strip(panel),
                hint=HINTS.get(panel.title, f"Nothing matching {', '.join(panel.patterns)} yet."),
                colours=self.colours,
            )
            self.plots[panel.title] = plot
            if i == 0:
                plot.setObjectName("lossPlot" if panel.title == "Loss" else plot.objectName())
                plot.setAccessibleName(f"{panel.title} curves")
                self.grid.addWidget(plot, 0, 0, 1, columns)
            else:
                row, column = 1 + (i - 1) // columns, (i - 1) % columns
                plot.setMinimumHeight(170)  # its width: what its axes need (minimumSizeHint)
                self.grid.addWidget(plot, row, column)
                self.grid.setColumnStretch(column, 5 if several else 3)  # room for its legend
                plot.getViewBox().enableAutoRange(x=False)  # the first panel's steps
            plot.hovered.connect(self._crosshair)
            # Every panel shows the same x: zooming or panning one moves the others (by
            # value: pyqtgraph's own link maps screen positions, wrong for plots side by side).
            plot.getViewBox().sigXRangeChanged.connect(
                lambda box, x_range, source=plot: self._follow_zoom(source, x_range)
            )
        rows = 1 + -(-len(small) // columns)
        self.grid.setRowStretch(0, 3 if len(panels) > 1 else 1)
        for row in range(1, rows):
            self.grid.setRowStretch(row, 2)
        self.set_log_y(self.log_y.isChecked())

    def set_panel_layout(self, layout: PanelLayout, save: bool = True) -> None:
        """Show `layout`'s panels (and its x axis and smoothing), redrawn from the run."""
        self.panel_layout = layout
        self.curves.clear()
        self._build_panels()
        self.bar.show_layout(layout)
        if self.run is not None:
            self.redraw(self.run, set(self.run.series) | {"@stages"}, self.weight, force=True)
            self.run.dirty.add("@stages")  # the monitor veils the new panels' reused steps
        if save:
            self.layoutChanged.emit(layout)

    def set_x_axis(self, axis: str) -> None:
        if axis != self.panel_layout.x_axis:
            self.panel_layout.x_axis = axis
            self.set_panel_layout(self.panel_layout)

    def mapped_spans(self, spans: list[tuple[float, float, str]]) -> list:
        """(x0, x1, label) spans of global steps on the x axis shown."""
        mapping = x_map(self.run, self.panel_layout.x_axis) if self.run is not None else None
        if mapping is None:
            return spans
        return [(*mapping([x0, x1]).tolist(), label) for x0, x1, label in spans]

    def panel_of(self, key: str) -> list[QtCurvePlot]:
        return [self.plots[p.title] for p in self.panel_layout.panels_for(key)]

    # -- zoom, crosshair ----------------------------------------------------------------------

    def set_log_y(self, on: bool) -> None:
        for title, plot in self.plots.items():
            if title not in ("Learning rate", "Throughput", "Evaluation"):
                plot.set_log_y(on)

    def _crosshair(self, x) -> None:
        for plot in self.plots.values():
            if plot is not self.sender():
                plot.show_cursor(x)

    def values_at(self, x: float) -> dict[str, str]:
        """Every panel's readout at x, by panel title (what the crosshair shows)."""
        return {title: plot.values_at(x) for title, plot in self.plots.items()}

    def _follow_zoom(self, source: QtCurvePlot, x_range) -> None:
        """The first panel leads (its autorange covers the run); another zoomed by hand
        takes the first, and so every panel, to its range."""
        if self._linking or source not in self.plots.values():
            return
        self._linking = True
        lead = self.loss
        try:
            if source is not lead:
                if source.getViewBox().autoRangeEnabled()[0]:  # its own "A" button
                    source.getViewBox().enableAutoRange(x=False)
                    lead.enableAutoRange(x=True)
                    x_range = lead.getViewBox().viewRange()[0]
                else:
                    lead.setXRange(*x_range, padding=0)
            for plot in self.plots.values():
                if plot is not lead and plot is not source:
                    plot.setXRange(*x_range, padding=0)
            if source is not lead:
                source.setXRange(*x_range, padding=0)
        finally:
            self._linking = False

    def show_all(self) -> None:
        for plot in self.plots.values():
            plot.enableAutoRange(y=True)
        self.loss.enableAutoRange(x=True)
        self._follow_zoom(self.loss, self.loss.getViewBox().viewRange()[0])

    def clear(self) -> None:
        self.run = None
        self.curves.clear()
        self.colours.clear()
        self._first_colours()
        for plot in self.plots.values():
            plot.clear_curves()
            plot.set_boundaries([])

    # -- drawing ------------------------------------------------------------------------------

    def curve_data(self, key: str):
        """(x on the chosen axis, smoothed y, raw y or None) of a series as drawn."""
        curve = self.curves[key]
        x, y = curve.arrays(smoothed=True)
        mapping = x_map(self.run, self.panel_layout.x_axis) if self.run is not None else None
        return (mapping(x) if mapping else x), y, curve.raw.values if curve.weight > 0 else None

    def redraw(self, run: RunSeries, dirty: set[str], weight: float, force: bool = False) -> int:
        """Update the curves of the changed series; returns how many were redrawn."""
        self.run = run
        if dirty:
            self.bar.show_axes(run)
        mapping = x_map(run, self.panel_layout.x_axis)
        shown = self.panel_layout.x_axis if mapping is not None else "step"
        if shown != self._shown_axis:  # an axis the run can (or can no longer) be drawn by
            self._shown_axis, force = shown, True
            for plot in self.plots.values():
                plot.set_x_name(X_NAMES[shown], X_LABELS[shown])
        moved = "@clock" in dirty or any(not k.startswith("@") for k in dirty)
        remap = mapping is not None and (moved or self._remap_pending)
        if remap and not force and weight == self.weight:
            # By time or tokens a new point moves the mapping, so every curve is drawn
            # again: at most every few times what that costs, so a big live run's redraws
            # never take the event loop over (the next one draws all that came meanwhile).
            if time.perf_counter() < self._remap_after:
                self._remap_pending = True
                return 0
        started = time.perf_counter()
        if weight != self.weight or remap:
            self.weight, dirty, force = weight, set(run.series) | dirty, True
            self._remap_pending = False
        if "@stages" in dirty or force:
            dirty |= set(run.series)
            marks = run.boundaries()
            if mapping is not None:
                marks = [(float(mapping([x])[0]), name) for x, name in marks]
            for i, plot in enumerate(self.plots.values()):
                plot.set_boundaries(marks if len(marks) > 1 else [], labels=i == 0)
        drawn = 0
        # train/ before eval/: colours follow first appearance, and train/loss is the main curve.
        for key in sorted(
            (k for k in dirty if not k.startswith("@")),
            key=lambda k: (not k.startswith("train/"), k),
        ):
            plots = self.panel_of(key)
            if not plots:
                continue
            curve = self.curves.setdefault(key, Curve(key))
            # Sparse evaluation points and the schedule's learning rate are never smoothed.
            smooth = key != "train/lr" and not is_sparse(key)
            change = curve.sync(run, weight if smooth else 0.0)
            if not change and not force:
                continue
            x, y = curve.arrays(smoothed=True)
            shadow = curve.raw.values if curve.weight > 0 else None
            bands = curve.odd_bands()
            if mapping is not None:
                x = mapping(x)
                bands = [(*mapping([a, b]).tolist(), label) for a, b, label in bands]
            for plot in plots:
                self._draw(plot, key, x, y, shadow, change == "grown" and not force, bands)
            drawn += 1
        if mapping is not None:
            cost = time.perf_counter() - started
            self._remap_after = time.perf_counter() + min(10.0, max(0.2, 5 * cost))
        return drawn

    def _draw(self, plot: QtCurvePlot, key, x, y, shadow, grown: bool, bands) -> None:
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
            grown=grown,
            symbols=is_sparse(key),
            colour=self.colours.colour(twin if marker else key),
            legend=not marker,
            unit=is_probability(key),
        )
        plot.set_odd_bands(key, bands)
        if new and plot.accessibleName() == "Evaluation" and key.split("/")[1] not in RATES:
            plot.curves[key].setVisible(False)  # perplexity & co. would flatten the rates
