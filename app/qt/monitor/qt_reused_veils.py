"""The veil over a reused stage's steps in every plot of the monitor (`ReusedVeils`): that
stage's curves are the points of the run that trained it, drawn faded under a shaded band
whose tooltip names the source ("reused from run 2"); stage lines stay crisp above it."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor

VEIL_Z = 5  # over the curves, under the hover readout (10)


class ReusedVeils:
    """The veils shown, as (plot, veil) pairs, and the (x0, x1, label) spans they cover."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []
        self.items: list[tuple[pg.PlotWidget, pg.LinearRegionItem]] = []

    def show_spans(self, spans: list[tuple[float, float, str]], plots, base: QColor) -> None:
        """Veil `spans` in every plot of `plots`, in the canvas colour `base` (faded)."""
        plots = list(plots)
        if spans == self.spans and [p for p, _ in self.items[: len(plots)]] == plots:
            return  # the same spans over the same panels (new panels are veiled again)
        self.spans = spans
        for plot, veil in self.items:
            try:
                plot.removeItem(veil)
            except RuntimeError:
                pass  # a panel removed with its veils
        self.items = []
        fade = QColor(base)
        fade.setAlpha(150)
        for x0, x1, label in spans:
            for plot in plots:
                veil = pg.LinearRegionItem(
                    values=(x0, x1), movable=False, brush=fade, pen=pg.mkPen(None)
                )
                veil.setZValue(VEIL_Z)  # over the curves (fading them), under the hover readout
                veil.setToolTip(label)
                plot.addItem(veil, ignoreBounds=True)
                self.items.append((plot, veil))

    def raise_lines(self, plots) -> None:
        """Stage lines and their labels stay crisp over a veil."""
        if not self.items:
            return
        for plot in plots:
            for item in plot.getPlotItem().items:
                if isinstance(item, pg.InfiniteLine) and item.zValue() < VEIL_Z + 1:
                    item.setZValue(VEIL_Z + 1)
