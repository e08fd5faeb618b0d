"""A plot of a few named curves over the run's global step: one curve item per series,
peak (min/max) downsampling and clip-to-view so ten million points draw as a few thousand
without hiding a spike, stage boundaries marked and labelled, values under the mouse."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.model.peaks import PeakLevels
from app.qt.qt_curve_legend import PALETTE, QtCurveLegend, SeriesColours
from app.qt.qt_odd_bands import ODD_COLOUR, OddBands
from app.qt.qt_plot_labels import PlainAxis, hint_label, place_line_labels

COLOURS = PALETTE[:8]  # one per run in compare, in order


class QtCurvePlot(pg.PlotWidget):
    """Curves by name; `set_curve` creates a curve item once and updates it after."""

    # x under the mouse (None: it left the plot): the panels' shared crosshair follows it.
    hovered = Signal(object)

    def __init__(
        self,
        title: str,
        y_label: str = "",
        x_label: str = "step",
        parent=None,
        legend: str = "right",
        strip: str = "",
        legend_columns: int = 2,
        hint: str = "No points yet.",
        colours: SeriesColours | None = None,
    ):
        """`legend`: "right" (a column beside the plot), "below" (under it: several or
        long names, such as compare's run labels) or "none" (one curve, named by the
        title); either way outside the canvas, never over the data or the axes.
        `strip`: a prefix the legend leaves out ("eval/" under the title Evaluation).
        `hint`: the line shown instead of empty axes until a curve has a point.
        `colours`: the run's colour per series, shared by its plots (else the plot's own).
        `legend_columns` is kept for callers: columns follow the width."""
        pal = QApplication.palette()
        super().__init__(
            parent,
            background=pal.color(QPalette.ColorRole.Base),
            axisItems={"left": PlainAxis("left")},
        )
        del legend_columns
        self.setObjectName(f"plot_{title.lower().replace(' ', '_')}")
        self.setAccessibleName(title)
        self._fg = pal.color(QPalette.ColorRole.Text)
        # The legend's margin in the canvas' colour, so plot and legend read as one.
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)
        self.colours = colours or SeriesColours(reserved=(ODD_COLOUR,))
        item = self.getPlotItem()
        item.setTitle(title, color=self._fg.name(), size="10pt")
        item.setLabel("bottom", x_label)
        if y_label:
            item.setLabel("left", y_label)
        # No grid: on a software-rendered canvas it costs more than all the curves (~10 ms
        # a plot); stage boundaries and axes carry the reading.
        # Decimation is ours (app/model/peaks.py): each curve gets what its visible range needs.
        box = item.getViewBox()
        box.sigXRangeChanged.connect(self._redecimate)
        box.sigRangeChanged.connect(
            lambda *_: (self._place_boundary_labels(), self._place_readout())
        )
        box.setAutoVisible(y=True)  # zoomed in, y fits the points in view
        self._strip = strip
        self._legend_kind = legend
        self.legend = QtCurveLegend("right" if legend == "none" else legend, self._fg, self)
        self._legend_room = (0, 0)
        self.hint = hint_label(hint, self._fg, self)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._shadows: dict[str, pg.PlotDataItem] = {}
        self.sources: dict[str, tuple[PeakLevels, PeakLevels | None]] = {}
        self.unit_interval: set[str] = set()  # curves that are probabilities, in [0, 1]
        self._boundaries: list[pg.InfiniteLine] = []
        self._odd = OddBands(self)
        self._marks: tuple[list, bool] = ([], True)
        # The values under the crosshair on the canvas' colour: readable over the curves.
        veil = QColor(pal.color(QPalette.ColorRole.Base))
        veil.setAlpha(225)
        self._readout = pg.TextItem(anchor=(0, 0), color=self._fg, fill=veil)
        self._readout.setZValue(10)
        self.addItem(self._readout, ignoreBounds=True)
        self._cursor = pg.InfiniteLine(
            angle=90, pen=pg.mkPen(self._fg, width=1, style=Qt.PenStyle.DotLine)
        )
        self._cursor.setVisible(False)
        self.addItem(self._cursor, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._hover)
        self._empty: bool | None = None
        self._log_y = False
        self.x_name = x_label  # what the readout calls an x value
        self._show_empty()

    # -- the legend's room, the empty hint ---------------------------------------------------

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        """Give the legend its margin and fit the canvas to the rest: pyqtgraph sizes its
        scene to the whole widget, so it is sized here to the viewport."""
        if self.closed or "hint" not in self.__dict__:
            return  # pyqtgraph resizes the canvas while it is being built
        room = self.legend.arrange(self.width(), self.height())
        if room != self._legend_room:
            self._legend_room = room
            self.setViewportMargins(0, 0, *room)
        viewport = self.viewport()
        self.range = QRectF(0, 0, viewport.width(), viewport.height())
        pg.GraphicsView.setRange(self, self.range, padding=0, disableAutoPixel=False)
        self.updateMatrix()
        self.hint.setGeometry(viewport.geometry().adjusted(12, 30, -12, -12))
        self._place_boundary_labels()
        self._check_minimum()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """What the plot's axes and title need, plus the legend: a layout that gives less
        cuts the plot off on the right."""
        need = self.getPlotItem().effectiveSizeHint(Qt.SizeHint.MinimumSize)
        return QSize(math.ceil(need.width()) + self._legend_room[0] + 2, 120)

    def _check_minimum(self) -> None:
        # Tick labels widen the axis as they are painted; the layout hears of it here.
        width = self.minimumSizeHint().width()
        if width != getattr(self, "_minimum_seen", None):
            self._minimum_seen = width
            self.updateGeometry()

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        self._check_minimum()

    def set_hint(self, text: str) -> None:
        """The line shown while the plot has no point (what will appear, or why none)."""
        self.hint.setText(text)

    def has_points(self) -> bool:
        # A series of NaN or infinite values only is drawn (its bands say so), not hinted
        # at as "nothing logged yet": a diverged run's gradient norm was.
        return any(len(levels.y) for levels, _ in self.sources.values())

    def _show_empty(self) -> None:
        """An empty plot shows its title and the hint, not bare axes and stage lines."""
        empty = not self.has_points()
        if empty == self._empty:
            return
        self._empty = empty
        item = self.getPlotItem()
        for side in ("left", "bottom"):
            item.showAxis(side, not empty)
        item.getViewBox().setVisible(not empty)
        self.hint.setVisible(empty)

    def _fit_limits(self) -> None:
        """y never goes below 0 for curves that never do (loss, learning rate,
        throughput), nor past [0, 1] when every curve shown is a probability."""
        shown = [n for n, c in self.curves.items() if c.isVisible() and n in self.sources]
        values = [self.sources[n][0].y for n in shown]
        values = [v[np.isfinite(v)] for v in values]
        values = [v for v in values if v.size]
        box = self.getPlotItem().getViewBox()
        if not values or self._log_y:
            box.setLimits(yMin=None, yMax=None)
            return
        low = min(float(v.min()) for v in values)
        high = max(float(v.max()) for v in values)
        unit = all(n in self.unit_interval for n in shown) and high <= 1.0
        box.setLimits(yMin=0.0 if low >= 0 else None, yMax=1.0 if unit and low >= 0 else None)

    # -- curves -----------------------------------------------------------------------------

    def colour(self, name: str) -> QColor:
        if name in self.curves:
            return QColor(self.curves[name].opts["pen"].color())
        return self.colours.colour(name)

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
        unit: bool = False,
    ) -> None:
        """Show (x, y) as the curve `name` (x ascending); `shadow` is the raw series drawn
        faint under a smoothed one. `grown`: the arrays only gained points at the end.
        `legend`: False keeps a curve out of the legend (markers that share another
        curve's colour). `unit`: the series is a probability, in [0, 1]."""
        colour = colour or self.colour(name)
        if unit:
            self.unit_interval.add(name)
        if name not in self.curves:
            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            # A 1-pixel (cosmetic) pen: wider pens draw several times slower in Qt's raster.
            caption = name.removeprefix(self._strip) if self._strip else name
            curve = pg.PlotDataItem(name=caption, pen=pg.mkPen(colour, width=1, style=style))
            curve.setCurveClickable(False)
            if symbols:
                curve.setSymbol("o")
                curve.setSymbolSize(5)
                curve.setSymbolBrush(colour)
                curve.setSymbolPen(colour)
            self.curves[name] = curve
            self.addItem(curve)
            curve.visibleChanged.connect(self._fit_limits)
            if legend and self._legend_kind != "none":
                self.legend.add(name, caption, colour, curve)
                self._relayout()
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
        self._show_empty()
        self._fit_limits()
        self._check_minimum()

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
        self.unit_interval.discard(name)
        self.legend.remove(name)
        self._relayout()
        self._show_empty()

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
        self._place_boundary_labels()

    def _place_boundary_labels(self) -> None:
        if hasattr(self, "legend"):
            place_line_labels(self.getPlotItem().getViewBox(), self._boundaries)

    def set_odd_bands(self, name: str, bands: list[tuple[float, float, str]]) -> None:
        """Mark where curve `name` has NaN or ±inf values (qt_odd_bands.py)."""
        row = list(self.curves).index(name) if name in self.curves else 0
        self._odd.set_bands(name, bands, row)

    def odd_bands(self, name: str) -> list[tuple[float, float, str]]:
        """The non-finite bands shown for curve `name`."""
        return self._odd.bands(name)

    def set_log_y(self, on: bool) -> None:
        self._log_y = on
        self._fit_limits()  # limits are in the axis' own (log) units: none on a log axis
        self.getPlotItem().setLogMode(y=on)

    # -- hover ------------------------------------------------------------------------------

    def _hover(self, pos) -> None:
        box = self.getPlotItem().vb
        if not self.curves or not box.sceneBoundingRect().contains(pos):
            self.show_cursor(None)
            self.hovered.emit(None)
            return
        x = box.mapSceneToView(pos).x()
        self.show_cursor(x)
        self.hovered.emit(x)

    def show_cursor(self, x: float | None) -> None:
        """The crosshair at x with every curve's value there (None hides it): the plot
        under the mouse and, through `hovered`, every other panel of the run."""
        if x is None or not self.curves:
            self._cursor.setVisible(False)
            self._readout.setText("")
            return
        self._cursor.setPos(x)
        self._cursor.setVisible(True)
        self._readout.setText(self.values_at(x))
        self._place_readout()

    def _place_readout(self) -> None:
        # The view's top left corner, again whenever the range moves (a crosshair set
        # from another panel may come before this one's autorange).
        if "_cursor" in self.__dict__ and self._cursor.isVisible():
            box = self.getPlotItem().vb
            self._readout.setPos(box.viewRange()[0][0], box.viewRange()[1][1])

    def set_x_name(self, name: str, label: str) -> None:
        """The x axis' label and the word the readout uses for an x value."""
        self.x_name = name
        item = self.getPlotItem()
        item.setLabel("bottom", label)
        if self._empty:
            item.showAxis("bottom", False)  # setLabel shows it: an empty plot shows its hint

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
            odd = self._odd.at(name, x, abs(xs[i] - x))
            if odd:
                lines.append(f"{name}: {odd}")
                continue
            if np.isnan(ys[i]) and i + 1 < len(ys):
                i += 1
            at = f"{xs[i]:.0f}" if self.x_name == "step" else f"{xs[i]:.4g}"
            lines.append(f"{name}: {ys[i]:.5g}  ({self.x_name} {at})")
        return "\n".join(lines)
