"""The curve plots' legend and colours.

The legend is a plain widget beside (or under) the plot, in a margin of the plot's view
that the plotting canvas never draws into, so no entry can cover a curve or an axis
whatever the plot's size, the number of curves or the moment they arrive (pyqtgraph's own
legend lives in the plot's scene: its labels drifted from their samples, it sat on the y
axis while a run was back-filled, and its entries overlapped). A click on an entry hides or
shows its curve.

Colours are given by series name for a whole run (`SeriesColours`), so one series has one
colour in every plot and two series never share one."""

from __future__ import annotations

import colorsys
import math

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QScrollArea, QWidget

# Colour-blind-safe first (Okabe-Ito, black replaced by a grey readable on dark themes),
# then Paul Tol's muted set; further colours are spread round the hue circle.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#7F7F7F",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#117733",
    "#DDCC77",
    "#6699CC",
    "#661100",
    "#88CCEE",
    "#332288",
    "#F0E442",
)


class SeriesColours:
    """A colour per series name, given once and kept (first come, first served): the
    same series is drawn in the same colour in every plot of a run, and no two series of
    the run share a colour. `alias` maps a name to the series whose colour it borrows
    (a test score's marker takes its eval curve's colour)."""

    def __init__(self, reserved: tuple[str, ...] = ()):
        self.given: dict[str, str] = {}
        self._reserved = {c.lower() for c in reserved}

    def colour(self, name: str) -> QColor:
        if name not in self.given:
            self.given[name] = self._next()
        return QColor(self.given[name])

    def _next(self) -> str:
        used = {c.lower() for c in self.given.values()} | self._reserved
        for colour in PALETTE:
            if colour.lower() not in used:
                return colour
        # Past the palette: hues by the golden angle, alternating lightness.
        n = len(self.given)
        while True:
            hue = (n * 0.618034) % 1.0
            value = 0.75 if n % 2 else 0.6
            r, g, b = colorsys.hsv_to_rgb(hue, 0.7, value)
            colour = QColor.fromRgbF(r, g, b).name()
            if colour.lower() not in used:
                return colour
            n += 1

    def clear(self) -> None:
        self.given.clear()


class QtLegendEntry(QWidget):
    """One legend line: a sample of the curve's pen (a dot for marker curves) and its name,
    elided to the legend's width (the whole name is the tooltip). Click: hide / show."""

    SAMPLE = 22

    def __init__(self, key: str, caption: str, colour: QColor, curve, fg: QColor, parent=None):
        super().__init__(parent)
        self.key = key
        self.text = caption  # read as pyqtgraph's legend labels are: `label.text`
        self.curve = curve
        self.colour = QColor(colour)
        self._fg = QColor(fg)
        self.setToolTip(f"{caption}: click to hide or show the curve")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        small = QFont(self.font())
        small.setPointSizeF(max(6.5, small.pointSizeF() * 0.85))
        self.setFont(small)
        curve.visibleChanged.connect(self.repaint)

    def sizeHint(self) -> QSize:  # noqa: N802
        metrics = self.fontMetrics()
        return QSize(
            self.SAMPLE + 6 + metrics.horizontalAdvance(self.text) + 4, metrics.height() + 2
        )

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.curve.setVisible(not self.curve.isVisible())
            event.accept()

    def paintEvent(self, _event) -> None:  # noqa: N802
        shown = self.curve.isVisible()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = QColor(self.colour)
        if not shown:
            colour.setAlpha(70)
        middle = self.height() / 2
        pen = QPen(colour, 2)
        style = self.curve.opts["pen"].style() if self.curve.opts.get("pen") is not None else None
        if style is not None:
            pen.setStyle(style)
        painter.setPen(pen)
        painter.drawLine(QPointF(2, middle), QPointF(self.SAMPLE - 2, middle))
        if self.curve.opts.get("symbol"):
            painter.setBrush(colour)
            painter.drawEllipse(QPointF(self.SAMPLE / 2, middle), 3, 3)
        text = QColor(self._fg)
        if not shown:
            text.setAlpha(110)
        painter.setPen(text)
        font = QFont(self.font())
        font.setStrikeOut(not shown)
        painter.setFont(font)
        room = QRect(self.SAMPLE + 6, 0, self.width() - self.SAMPLE - 6, self.height())
        shown_text = self.fontMetrics().elidedText(
            self.text, Qt.TextElideMode.ElideMiddle, room.width()
        )
        painter.drawText(
            room, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, shown_text
        )
        painter.end()


class QtCurveLegend(QScrollArea):
    """The entries of one plot, laid out in `arrange`: one column beside the plot
    ("right") or as many columns as fit under it ("below"); scrolls when they do not fit."""

    def __init__(self, placement: str, fg: QColor, parent=None):
        super().__init__(parent)
        self.placement = placement
        self._fg = fg
        self.entries: list[QtLegendEntry] = []
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidgetResizable(False)
        self.inner = QWidget()
        self.inner.setAutoFillBackground(False)
        self.setWidget(self.inner)
        self.viewport().setAutoFillBackground(False)
        self.setAccessibleName("Legend")
        self.hide()

    # pyqtgraph's LegendItem shape, which callers and tests read: (sample, label) pairs.
    @property
    def items(self) -> list[tuple[QtLegendEntry, QtLegendEntry]]:
        return [(e, e) for e in self.entries]

    def add(self, key: str, caption: str, colour: QColor, curve) -> None:
        entry = QtLegendEntry(key, caption, colour, curve, self._fg, self.inner)
        entry.show()
        self.entries.append(entry)
        # Training curves first, then by name: the order does not depend on arrival.
        self.entries.sort(key=lambda e: (not e.key.startswith("train/"), e.key))

    def remove(self, key: str) -> None:
        for entry in [e for e in self.entries if e.key == key]:
            self.entries.remove(entry)
            # Hidden now: deleteLater waits for the event loop, and a redraw in between
            # painted the old entry under its successor (Compare, on changing the metric).
            entry.hide()
            entry.deleteLater()

    def labels(self) -> list[str]:
        return [e.text for e in self.entries]

    def arrange(self, width: int, height: int) -> tuple[int, int]:
        """Lay the entries out for a plot of (width, height) pixels; returns the room the
        legend takes from the plot: (right margin, bottom margin)."""
        if not self.entries:
            self.hide()
            return 0, 0
        row = max(e.sizeHint().height() for e in self.entries)
        wanted = max(e.sizeHint().width() for e in self.entries)
        bar = self.verticalScrollBar().sizeHint().width()
        if self.placement == "right":
            column = max(70, min(wanted, int(width * 0.4)))
            total = row * len(self.entries)
            scroll = total > height - 8
            # The bar is shown by this decision, not by Qt's: a bar that Qt shows and hides
            # as the area resizes can feed back into the plot's layout.
            self.setVerticalScrollBarPolicy(
                Qt.ScrollBarPolicy.ScrollBarAlwaysOn
                if scroll
                else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
            )
            self.inner.resize(column, total)
            for i, entry in enumerate(self.entries):
                entry.setGeometry(0, i * row, column, row)
            outer = column + (bar if scroll else 0) + 6
            self.setGeometry(width - outer, 4, outer, height - 8)
            self.show()
            return outer, 0
        column = max(70, min(wanted, width - 8))
        columns = max(1, (width - 8) // column)
        lines = math.ceil(len(self.entries) / columns)
        total = lines * row
        room = min(total, max(row, int(height * 0.4)))
        self.setVerticalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOn
            if total > room
            else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self.inner.resize(columns * column, total)
        for i, entry in enumerate(self.entries):
            entry.setGeometry((i % columns) * column, (i // columns) * row, column, row)
        self.setGeometry(4, height - room - 2, width - 8, room)
        self.show()
        return 0, room + 4

    def sceneBoundingRect(self) -> QRectF:  # noqa: N802
        """Where the legend lies in the plot's scene coordinates (the canvas draws the
        scene 1:1 into its viewport), to compare with the view box and the axes."""
        plot = self.parentWidget()
        origin = plot.viewport().geometry().topLeft() if plot is not None else None
        rect = QRectF(self.geometry())
        if origin is not None:
            rect.translate(-origin.x(), -origin.y())
        return rect
