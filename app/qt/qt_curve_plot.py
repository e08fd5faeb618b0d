"""A plot of a few named curves over the run's global step: one curve item per series,
peak (min/max) downsampling and clip-to-view so ten million points draw as a few thousand
without hiding a spike, stage boundaries marked and labelled, values under the mouse."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.model.peaks import PeakLevels

# Colour-blind-safe (Okabe-Ito) colours, one per series in order of appearance.
ODD_COLOUR = "#C00000"  # NaN/inf bands: a red that no curve colour uses
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


class QtCurvePlot(pg.PlotWidget):
    """Curves by name; `set_curve` creates a curve item once and updates it after."""

    def __init__(
        self,
        title: str,
        y_label: str = "",
        x_label: str = "step",
        parent=None,
        legend: str = "inside",
        strip: str = "",
        legend_columns: int = 2,
    ):
        """`legend`: "inside" (top right), "below" (under the axis, never over the data:
        several or long names, such as compare's run labels), "right" (beside the axis,
        one column: many curves of a tall plot) or "none" (one curve, named
        by the title). `strip`: a prefix the legend leaves out ("eval/" under the title
        Evaluation)."""
        pal = QApplication.palette()
        super().__init__(parent, background=pal.color(QPalette.ColorRole.Base))
        self.setObjectName(f"plot_{title.lower().replace(' ', '_')}")
        self.setAccessibleName(title)
        self._fg = pal.color(QPalette.ColorRole.Text)
        item = self.getPlotItem()
        item.setTitle(title, color=self._fg.name(), size="10pt")
        item.setLabel("bottom", x_label)
        if y_label:
            item.setLabel("left", y_label)
        # No grid: on a software-rendered canvas it costs more than all the curves (~10 ms
        # a plot); stage boundaries and axes carry the reading.
        # Decimation is ours (app/model/peaks.py): each curve gets what its visible range needs.
        item.getViewBox().sigXRangeChanged.connect(self._redecimate)
        backdrop = QColor(pal.color(QPalette.ColorRole.Base))
        backdrop.setAlpha(200)
        self._strip = strip
        if legend == "below":
            # Columns widen the plot's layout past a small plot's width (then cut on the
            # right): few for the small plots, more for a wide one.
            self.legend = pg.LegendItem(
                colCount=legend_columns,
                labelTextColor=self._fg,
                labelTextSize="7pt",
                verSpacing=-10,
                horSpacing=4,
            )
            item.layout.addItem(self.legend, 4, 1)
            item.legend = self.legend  # curves with a name join it, as with addLegend
        elif legend == "right":
            # Beside the axis: many curves (a joint stage's members) never cover the data.
            self.legend = pg.LegendItem(
                colCount=1, labelTextColor=self._fg, labelTextSize="8pt", verSpacing=-8
            )
            item.layout.addItem(self.legend, 2, 3)
            item.legend = self.legend
        elif legend == "none":
            self.legend = pg.LegendItem()  # never shown: nothing joins it
        else:
            self.legend = item.addLegend(offset=(-10, 10), labelTextColor=self._fg, brush=backdrop)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._shadows: dict[str, pg.PlotDataItem] = {}
        self.sources: dict[str, tuple[PeakLevels, PeakLevels | None]] = {}
        self._boundaries: list[pg.InfiniteLine] = []
        self._odd: dict[str, tuple[list, list]] = {}  # name -> (bands, their items)
        self._marks: tuple[list, bool] = ([], True)
        self._readout = pg.TextItem(anchor=(0, 0), color=self._fg)
        self._readout.setZValue(10)
        self.addItem(self._readout, ignoreBounds=True)
        self._cursor = pg.InfiniteLine(
            angle=90, pen=pg.mkPen(self._fg, width=1, style=Qt.PenStyle.DotLine)
        )
        self._cursor.setVisible(False)
        self.addItem(self._cursor, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._hover)

    # -- curves -----------------------------------------------------------------------------

    def colour(self, name: str) -> QColor:
        index = list(self.curves).index(name) if name in self.curves else len(self.curves)
        return QColor(COLOURS[index % len(COLOURS)])

    def set_curve(
        self,
        name: str,
        x: np.ndarray,
        y: np.ndarray,
        shadow: np.ndarray | None = None,
        *,
        grown: bool = False,
        colour: QColor | None = None,
        dashed: bool = False,
        symbols: bool = False,
        legend: bool = True,
    ) -> None:
        """Show (x, y) as the curve `name` (x ascending); `shadow` is the raw series drawn
        faint under a smoothed one. `grown`: the arrays only gained points at the end.
        `legend`: False keeps a curve out of the legend (markers that share another
        curve's colour)."""
        colour = colour or self.colour(name)
        if name not in self.curves:
            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            # A 1-pixel (cosmetic) pen: wider pens draw several times slower in Qt's raster.
            curve = pg.PlotDataItem(
                name=(name.removeprefix(self._strip) if self._strip else name) if legend else None,
                pen=pg.mkPen(colour, width=1, style=style),
            )
            curve.setCurveClickable(False)
            if symbols:
                curve.setSymbol("o")
                curve.setSymbolSize(5)
                curve.setSymbolBrush(colour)
                curve.setSymbolPen(colour)
            self.curves[name] = curve
            self.addItem(curve)
        levels, faint_levels = self.sources.get(name, (PeakLevels(), None))
        levels.update(x, y, grown)
        if shadow is not None:
            if name not in self._shadows:
                fade = QColor(colour)
                fade.setAlpha(70)
                faint = pg.PlotDataItem(pen=pg.mkPen(fade, width=1))
                faint.setZValue(-1)
                faint.setVisible(self.curves[name].isVisible())
                # Hiding a curve from the legend hides its raw shadow too.
                self.curves[name].visibleChanged.connect(
                    lambda c=self.curves[name], f=faint: f.setVisible(c.isVisible())
                )
                self._shadows[name] = faint
                self.addItem(faint)
            faint_levels = faint_levels or PeakLevels()
            faint_levels.update(x, shadow, grown and faint_levels is not None)
        elif name in self._shadows:
            self.removeItem(self._shadows.pop(name))
            faint_levels = None
        self.sources[name] = (levels, faint_levels)
        self._draw(name)

    def _visible_x(self) -> tuple[float, float] | None:
        box = self.getPlotItem().getViewBox()
        if box.autoRangeEnabled()[0]:
            return None  # the whole curve
        return tuple(box.viewRange()[0])

    def _draw(self, name: str) -> None:
        levels, faint_levels = self.sources[name]
        span = self._visible_x()
        if span is None:
            span = (-np.inf, np.inf)
        target = max(self.width(), 400)
        x, y = levels.view(*span, target)
        self.curves[name].setData(x, y, connect="finite")
        if faint_levels is not None:
            self._shadows[name].setData(*faint_levels.view(*span, target), connect="finite")

    def _redecimate(self, *_args) -> None:
        for name in self.sources:
            self._draw(name)

    def remove_curve(self, name: str) -> None:
        self.set_odd_bands(name, [])
        self.sources.pop(name, None)
        for items in (self.curves, self._shadows):
            item = items.pop(name, None)
            if item is not None:
                self.removeItem(item)
                self.legend.removeItem(item)

    def clear_curves(self) -> None:
        for name in list(self.curves):
            self.remove_curve(name)

    def set_boundaries(self, marks: list[tuple], labels: bool = True) -> None:
        """Vertical lines where stages begin, labelled with the stage name: (x, name), or
        (x, name, colour) for a boundary of one curve only (compare: one run's stage)."""
        if self._marks == (marks, labels):
            return
        self._marks = (marks, labels)
        for line in self._boundaries:
            self.removeItem(line)
        self._boundaries = []
        for x, label, *colour in marks:
            colour = QColor(colour[0]) if colour and colour[0] else self._fg
            line = pg.InfiniteLine(
                pos=x,
                angle=90,
                pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                label=label if labels else None,
                labelOpts={"position": 0.97, "color": colour, "anchors": [(0, 0), (0, 0)]},
            )
            self.addItem(line, ignoreBounds=True)
            self._boundaries.append(line)

    def set_odd_bands(self, name: str, bands: list[tuple[float, float, str]]) -> None:
        """Mark where curve `name` has NaN or ±inf values: a shaded band over each run of
        such points and a labelled line at its start ("NaN in train/loss"), so a diverged
        loss reads differently from the plain gaps between stages."""
        if self._odd.get(name, (None,))[0] == bands:
            return
        for item in self._odd.pop(name, (None, []))[1]:
            self.removeItem(item)
        colour = QColor(ODD_COLOUR)
        fill = QColor(colour)
        fill.setAlpha(45)
        items = []
        index = list(self.curves).index(name) if name in self.curves else 0
        row = 0.1 + 0.09 * (index % 8)
        for x0, x1, label in bands:
            if x1 > x0:
                band = pg.LinearRegionItem(
                    values=(x0, x1), movable=False, brush=fill, pen=pg.mkPen(None)
                )
                band.setZValue(-5)
                self.addItem(band, ignoreBounds=True)
                items.append(band)
            line = pg.InfiniteLine(
                pos=x0,
                angle=90,
                pen=pg.mkPen(colour, width=1),
                label=f"{label} in {name}",
                # One label row per curve, so two curves that diverge together stay legible.
                labelOpts={"position": row, "color": colour, "anchors": [(0, 1), (0, 1)]},
            )
            self.addItem(line, ignoreBounds=True)
            items.append(line)
        self._odd[name] = (bands, items)

    def odd_bands(self, name: str) -> list[tuple[float, float, str]]:
        """The non-finite bands shown for curve `name`."""
        return self._odd.get(name, ([], []))[0]

    def set_log_y(self, on: bool) -> None:
        self.getPlotItem().setLogMode(y=on)

    # -- hover ------------------------------------------------------------------------------

    def _hover(self, pos) -> None:
        box = self.getPlotItem().vb
        if not self.curves or not box.sceneBoundingRect().contains(pos):
            self._cursor.setVisible(False)
            self._readout.setText("")
            return
        x = box.mapSceneToView(pos).x()
        self._cursor.setPos(x)
        self._cursor.setVisible(True)
        self._readout.setText(self.values_at(x))
        left, top = box.viewRange()[0][0], box.viewRange()[1][1]
        self._readout.setPos(left, top)

    def values_at(self, x: float) -> str:
        """Each curve's point nearest to x, as the hover readout shows it."""
        lines = []
        for name, (levels, _) in self.sources.items():
            xs, ys = levels.x, levels.y
            if not len(xs):
                continue
            i = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
            if i > 0 and abs(xs[i - 1] - x) < abs(xs[i] - x):
                i -= 1
            odd = self._odd_at(name, x, abs(xs[i] - x))
            if odd:
                lines.append(f"{name}: {odd}")
                continue
            if np.isnan(ys[i]) and i + 1 < len(ys):
                i += 1
            lines.append(f"{name}: {ys[i]:.5g}  (step {xs[i]:.0f})")
        return "\n".join(lines)

    def _odd_at(self, name: str, x: float, nearest: float) -> str:
        # Inside a NaN/inf band, or closer to its start than to any drawn point.
        for x0, x1, label in self.odd_bands(name):
            if x0 <= x <= x1 or abs(x0 - x) < nearest:
                return (
                    f"{label}  (steps {x0:.0f}–{x1:.0f})"
                    if x1 > x0
                    else f"{label}  (step {x0:.0f})"
                )
        return ""
