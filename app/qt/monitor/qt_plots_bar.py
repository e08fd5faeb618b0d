"""The controls above the monitor's panels (`QtPlotsBar`): smoothing, log scale, Show all,
the x axis (step, wall time, tokens seen: a choice the run cannot be drawn by is greyed
out with the reason as its tooltip) and Panels…, which opens the panel editor."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

from app.model.panels import X_AXES, PanelLayout
from app.model.x_axis import why_not
from app.qt.qt_elided_label import QtElidedLabel

if TYPE_CHECKING:
    from app.model.run_series import RunSeries
    from app.qt.monitor.qt_run_plots import QtRunPlots

AXIS_NAMES = {"step": "Step", "wall": "Wall time", "tokens": "Tokens seen"}


class QtPlotsBar(QWidget):
    def __init__(self, plots: QtRunPlots):
        super().__init__(plots)
        self.plots = plots
        self._showing = False
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("smoothingSlider")
        self.smoothing.setAccessibleName("Smoothing")
        self.smoothing.setRange(0, 99)
        self.smoothing.setMinimumWidth(80)  # a usable handle on a small screen
        self.smoothing.setMaximumWidth(160)
        self.smoothing.setToolTip(
            "Debiased exponential moving average of the curves, as TensorBoard draws it "
            "(0 = raw points); the raw curve stays faint behind"
        )
        self.smoothing_value = QLabel("0.00")
        self.smoothing.valueChanged.connect(self._smoothing_moved)
        self.log_y = QCheckBox("Log scale")
        self.log_y.setObjectName("logScale")
        self.log_y.toggled.connect(plots.set_log_y)
        reset = QPushButton("Show all")
        reset.setObjectName("showAllButton")
        reset.setToolTip("Zoom out to the whole run (the view then follows new points)")
        reset.clicked.connect(plots.show_all)
        self.x_axis = QComboBox()
        self.x_axis.setObjectName("xAxisChoice")
        self.x_axis.setAccessibleName("X axis")
        for axis in X_AXES:
            self.x_axis.addItem(AXIS_NAMES[axis], axis)
        self.x_axis.currentIndexChanged.connect(self._axis_chosen)
        self.panels_button = QPushButton("Panels…")
        self.panels_button.setObjectName("panelsButton")
        self.panels_button.setToolTip(
            "Choose the panels and the metrics each shows (names or patterns such as "
            "eval/accuracy*); kept for this experiment"
        )
        self.panels_button.clicked.connect(self.edit_panels)
        self.help = QtElidedLabel(
            "Drag to pan, wheel to zoom, hover for values; click a legend entry to hide a curve."
        )
        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing)
        bar.addWidget(self.smoothing_value)
        bar.addSpacing(12)
        bar.addWidget(self.log_y)
        bar.addWidget(reset)
        bar.addWidget(QLabel("x:"))
        bar.addWidget(self.x_axis)
        bar.addWidget(self.panels_button)
        bar.addSpacing(12)
        bar.addWidget(self.help, 1)
        self.dialog = None

    def _smoothing_moved(self, value: int) -> None:
        self.smoothing_value.setText(f"{value / 100:.2f}")
        self.plots.smoothingChanged.emit(value / 100)
        if not self._showing:
            self.plots.panel_layout.smoothing = value / 100
            self.plots.layoutChanged.emit(self.plots.panel_layout)

    def _axis_chosen(self, index: int) -> None:
        if not self._showing and index >= 0:
            self.plots.set_x_axis(self.x_axis.itemData(index))

    def show_layout(self, layout: PanelLayout) -> None:
        """The layout's smoothing and x axis, set without saving them again."""
        self._showing = True
        try:
            self.smoothing.setValue(round(layout.smoothing * 100))
            self.x_axis.setCurrentIndex(X_AXES.index(layout.x_axis))
        finally:
            self._showing = False

    def show_axes(self, run: RunSeries | None) -> None:
        """Grey out the x axes the run cannot be drawn by, their reason as the tooltip."""
        model = self.x_axis.model()
        tips = []
        for i, axis in enumerate(X_AXES):
            why = why_not(run, axis) if axis != "step" else ""
            item = model.item(i)
            if item.isEnabled() == bool(why):
                item.setEnabled(not why)
            if item.toolTip() != why:  # redraws come ten times a second
                item.setToolTip(why)
            if why:
                tips.append(f"{AXIS_NAMES[axis]}: {why}")
        tip = "\n".join(["Draw the curves by step, wall time or tokens", *tips])
        if self.x_axis.toolTip() != tip:
            self.x_axis.setToolTip(tip)

    def edit_panels(self) -> None:
        """Open the panel editor on a copy of the layout; OK shows (and keeps) it."""
        from app.qt.monitor.qt_panels_dialog import QtPanelsDialog

        keys = self.plots.run.keys() if self.plots.run is not None else []
        chosen = copy.deepcopy(self.plots.panel_layout)
        self.dialog = QtPanelsDialog(chosen, keys, self.plots.default_panels, self)
        self.dialog.accepted.connect(lambda: self.plots.set_panel_layout(self.dialog.chosen))
        self.dialog.open()
