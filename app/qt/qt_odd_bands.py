"""Where a plot's curve has NaN or ±inf values (`OddBands`): a shaded band over each run
of such points and a labelled line at its start ("NaN in train/loss"), so a diverged loss
reads differently from the plain gaps between stages; the hover readout names them."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor

ODD_COLOUR = "#C00000"  # NaN/inf bands: a red that no curve colour uses


class OddBands:
    """The non-finite bands drawn on one plot, by curve name."""

    def __init__(self, plot: pg.PlotWidget):
        self.plot = plot
        self._shown: dict[str, tuple[list, list]] = {}  # name -> (bands, their items)

    def set_bands(self, name: str, bands: list[tuple[float, float, str]], row: int) -> None:
        """Show `bands` (x0, x1, label) for curve `name`, its line labels in label row
        `row` (one row per curve, so two curves that diverge together stay legible)."""
        if self._shown.get(name, (None,))[0] == bands:
            return
        for item in self._shown.pop(name, (None, []))[1]:
            self.plot.removeItem(item)
        colour = QColor(ODD_COLOUR)
        fill = QColor(colour)
        fill.setAlpha(45)
        items = []
        position = 0.1 + 0.09 * (row % 8)
        for x0, x1, label in bands:
            if x1 > x0:
                band = pg.LinearRegionItem(
                    values=(x0, x1), movable=False, brush=fill, pen=pg.mkPen(None)
                )
                band.setZValue(-5)
                self.plot.addItem(band, ignoreBounds=True)
                items.append(band)
            line = pg.InfiniteLine(
                pos=x0,
                angle=90,
                pen=pg.mkPen(colour, width=1),
                label=f"{label} in {name}",
                labelOpts={"position": position, "color": colour, "anchors": [(0, 1), (0, 1)]},
            )
            self.plot.addItem(line, ignoreBounds=True)
            items.append(line)
        self._shown[name] = (bands, items)

    def bands(self, name: str) -> list[tuple[float, float, str]]:
        """The non-finite bands shown for curve `name`."""
        return self._shown.get(name, ([], []))[0]

    def at(self, name: str, x: float, nearest: float) -> str:
        """The band of curve `name` at x, as the hover readout says it ('' for none):
        inside a band, or closer to its start than `nearest`, the nearest drawn point."""
        for x0, x1, label in self.bands(name):
            if x0 <= x <= x1 or abs(x0 - x) < nearest:
                return (
                    f"{label}  (steps {x0:.0f}–{x1:.0f})"
                    if x1 > x0
                    else f"{label}  (step {x0:.0f})"
                )
        return ""
