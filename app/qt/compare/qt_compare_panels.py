"""Compare's panels (`QtComparePanels`): the panels chosen for the first run's experiment
(the monitor's, app/model/panels.py), each drawing its metrics for every run compared:
one colour per run in every panel, one line style per metric within a panel (solid,
dashed, dotted …), smoothed as the monitor smooths, with the raw curve faint behind."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.model.curve import Curve
from app.model.panels import (
    X_AXES,
    X_LABELS,
    PanelLayout,
    default_layout,
    save_layout,
    saved_layout,
)
from app.model.run_series import RunSeries
from app.model.x_axis import why_not, x_map
from app.qt.monitor.qt_plots_bar import AXIS_NAMES
from app.qt.monitor.qt_run_plots import X_NAMES
from app.qt.qt_curve_plot import COLOURS, QtCurvePlot

STYLES = (
    Qt.PenStyle.SolidLine,
    Qt.PenStyle.DashLine,
    Qt.PenStyle.DotLine,
    Qt.PenStyle.DashDotLine,
    Qt.PenStyle.DashDotDotLine,
)
PER_ROW = 3


def run_colour(i: int) -> QColor:
    return QColor(COLOURS[i % len(COLOURS)])


def smoothed_xy(run: RunSeries, key: str, weight: float, part: str = "all"):
    """(x by global step, smoothed y, raw y or None) of one run's series; evaluation
    points (few) and the learning rate are never smoothed."""
    sparse = key.startswith(("eval/", "test/", "teacher/")) or key == "train/lr"
    curve = Curve(key, part=part)
    curve.sync(run, 0.0 if sparse else weight)
    x, y = curve.arrays(smoothed=True)
    return x, y, (curve.raw.values if curve.weight > 0 else None)


class QtComparePanels(QWidget):
    axisChosen = Signal(object)  # the layout with its new x axis: Compare keeps and draws it

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("comparePanels")
        self.panel_layout = default_layout()
        self.plots: dict[str, QtCurvePlot] = {}
        self.runs: list = []
        # The x axis of the panels (kept in the shared layout): a choice that some run
        # compared cannot be drawn by is greyed out with the reason.
        self.x_axis = QComboBox()
        self.x_axis.setObjectName("compareXAxis")
        self.x_axis.setAccessibleName("X axis")
        for axis in X_AXES:
            self.x_axis.addItem(AXIS_NAMES[axis], axis)
        self.x_axis.currentIndexChanged.connect(self._axis_chosen)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("x:"))
        bar.addWidget(self.x_axis)
        bar.addStretch(1)
        self.grid = QGridLayout()
        self.grid.setContentsMargins(0, 0, 0, 0)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(bar)
        outer.addLayout(self.grid, 1)

    def _axis_chosen(self, index: int) -> None:
        axis = self.x_axis.itemData(index)
        if index >= 0 and axis != self.panel_layout.x_axis:
            self.panel_layout.x_axis = axis
            self.axisChosen.emit(self.panel_layout)

    def _show_axes(self, runs) -> str:
        """Grey out the axes some run lacks; returns the axis drawn."""
        model = self.x_axis.model()
        for i, axis in enumerate(X_AXES):
            why = next((w for _, run, _ in runs if (w := why_not(run, axis))), "")
            model.item(i).setEnabled(not why)
            model.item(i).setToolTip(why)
        self.x_axis.blockSignals(True)
        self.x_axis.setCurrentIndex(X_AXES.index(self.panel_layout.x_axis))
        self.x_axis.blockSignals(False)
        wanted = self.panel_layout.x_axis
        ok = not any(why_not(run, wanted) for _, run, _ in runs)
        return wanted if ok else "step"

    def draw(self, runs: list[tuple[str, RunSeries, str]], layout: PanelLayout, weight: float):
        """Every panel of `layout`, every matching series of every run."""
        if layout.to_dict()["panels"] != self.panel_layout.to_dict()["panels"] or not self.plots:
            self._build(layout)
        self.panel_layout = layout
        axis = self._show_axes(runs)
        maps = [x_map(run, axis) for _, run, _ in runs]
        self._label(axis)
        # train/ first: a panel's first metric is drawn solid, the training loss above all.
        keys = sorted(
            {k for _, run, _ in runs for k in run.keys()},
            key=lambda k: (not k.startswith("train/"), k),
        )
        for panel in layout.panels:
            plot = self.plots[panel.title]
            plot.clear_curves()
            held = [k for k in keys if panel.holds(k)]
            for i, (label, run, _) in enumerate(runs):
                for j, key in enumerate(held):
                    x, y, shadow = smoothed_xy(run, key, weight)
                    if not x.size:
                        continue
                    x = maps[i](x) if maps[i] is not None else x
                    name = label if len(held) == 1 else f"{label} · {key}"
                    plot.set_curve(
                        name,
                        x,
                        y,
                        shadow,
                        colour=run_colour(i),
                        dashed=False,
                        symbols=key.startswith("eval/"),
                    )
                    pen = plot.curves[name].opts["pen"]
                    pen.setStyle(STYLES[j % len(STYLES)])
                    plot.curves[name].setPen(pen)

    def _label(self, axis: str) -> None:
        for plot in self.plots.values():
            plot.set_x_name(X_NAMES[axis], X_LABELS[axis])

    def _build(self, layout: PanelLayout) -> None:
        for plot in self.plots.values():
            self.grid.removeWidget(plot)
            plot.hide()
            plot.deleteLater()
        self.plots = {}
        for n, panel in enumerate(layout.panels):
            plot = QtCurvePlot(
                panel.title,
                panel.unit,
                legend="below",
                hint=f"No run compared has {', '.join(panel.patterns)}.",
            )
            plot.setMinimumHeight(110)  # the Panels tab never makes Compare taller
            self.plots[panel.title] = plot
            self.grid.addWidget(plot, n // PER_ROW, n % PER_ROW)
            plot.hovered.connect(lambda x, source=plot: self._crosshair(source, x))

    def _crosshair(self, source: QtCurvePlot, x) -> None:
        """One crosshair across the panels, as in the monitor."""
        for plot in self.plots.values():
            if plot is not source:
                plot.show_cursor(x)

    def values_at(self, x: float) -> dict[str, str]:
        return {title: plot.values_at(x) for title, plot in self.plots.items()}


class ComparePanelsMixin:
    """Compare's panel layout: the first run's experiment's (shared with the monitor),
    edited with the monitor's panel editor and kept in the workspace."""

    def _experiment(self) -> str | None:
        if not self.runs:
            return None
        return self.loader.experiments.get(self.runs[0][1].run_id)

    def _workspace(self):
        path = getattr(self.store(), "path", None)
        return path.parent if path is not None else None

    def _saved_panels(self):
        name, root = self._experiment(), self._workspace()
        kinds = [s.kind for s in self.runs[0][1].stages.values()] if self.runs else []
        return (saved_layout(root, name) if name else None) or default_layout(kinds)

    def edit_panels(self) -> None:
        """The panel editor on the shared layout; OK draws and keeps it."""
        import copy

        from app.qt.monitor.qt_panels_dialog import QtPanelsDialog

        keys = sorted({k for _, run, _ in self.runs for k in run.keys()})
        self.dialog = QtPanelsDialog(copy.deepcopy(self.panel_layout), keys, None, self)
        self.dialog.accepted.connect(lambda: self.set_panel_layout(self.dialog.chosen))
        self.dialog.open()

    def set_panel_layout(self, chosen) -> None:
        self.panel_layout = chosen
        name, root = self._experiment(), self._workspace()
        if name and root is not None:
            try:
                save_layout(root, name, chosen)
            except OSError as exc:
                self.status.setText(f"Could not keep the panels: {exc}")
        self.tabs.setCurrentWidget(self.panels)
        self.draw()
