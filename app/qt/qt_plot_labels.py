"""Words on a plot: tick labels that carry their own magnitude (`tick_texts`,
`PlainAxis`), the labels of vertical lines (stage starts) placed so that none is cut by
the plot's edge or drawn over another (`place_line_labels`), and the muted line an empty
plot shows instead of bare axes (`hint_label`)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QWidget


def tick_texts(values: list[float], spacing: float) -> list[str]:
    """Tick labels without an SI-prefix scale on the axis: plain for ordinary magnitudes,
    scientific ("4.5e-4") for very small or large ones, with the fewest digits that tell
    the ticks apart and keep each within a twentieth of the spacing."""
    largest = max((abs(v) for v in values), default=0.0)
    plain = largest == 0 or 1e-3 <= largest < 1e5

    def text(value: float, digits: int) -> str:
        if value == 0 or abs(value) < spacing * 1e-9:
            return "0"
        if plain:
            return f"{value:.{digits}f}"
        mantissa, power = f"{value:.{digits}e}".split("e")
        return f"{mantissa}e{int(power)}"

    for digits in range(7):
        texts = [text(v, digits) for v in values]
        close = all(
            abs(float(t) - v) <= abs(spacing) * 0.05 for t, v in zip(texts, values, strict=True)
        )
        if close and len(set(texts)) == len(texts):
            return texts
    return [text(v, 6) for v in values]


class PlainAxis(pg.AxisItem):
    """An axis whose labels carry their own magnitude (no "(x1e-06)" beside the unit)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if self.logMode:
            return super().tickStrings(values, scale, spacing)
        return tick_texts([v * scale for v in values], spacing * scale)


def place_line_labels(box: pg.ViewBox, lines: list) -> None:
    """Labels of vertical lines (stage starts) beside their lines, never cut by the
    plot's edge nor over each other: a label that does not fit right of its line goes
    left of it, and labels that would overlap step down a row."""
    labelled = [line for line in lines if getattr(line, "label", None) is not None]
    area = box.sceneBoundingRect()
    if not labelled or area.width() <= 0:
        return
    rows: list[float] = []  # the right end of the last label in each row
    for line in sorted(labelled, key=lambda item: item.value()):
        label = line.label
        label.setVisible(True)
        width = label.boundingRect().width()
        x = box.mapViewToScene(pg.Point(line.value(), 0)).x()
        left = x + 2 + width > area.right() and x - width - 2 >= area.left()
        start = x - width - 2 if left else x + 2
        row = next((r for r, end in enumerate(rows) if start > end + 4), len(rows))
        if row == len(rows):
            rows.append(0.0)
        rows[row] = start + width
        anchor = (1, 0) if left else (0, 0)
        label.anchors = [anchor, anchor]
        step = (label.boundingRect().height() + 1) / area.height()
        position = 0.97 - step * row
        # A plot too short for another row leaves the label out (the line's tooltip and
        # the plot's hover still name the stage) rather than drawing it over another.
        label.setVisible(position - step >= 0)
        label.setPosition(max(step, position))
        label.updatePosition()


def hint_label(text: str, fg: QColor, parent: QWidget) -> QLabel:
    """The muted, centred line a plot shows until it has a point (clicks pass through)."""
    hint = QLabel(text, parent)
    hint.setObjectName("plotHint")
    hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
    hint.setWordWrap(True)
    hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    muted = QColor(fg)
    muted.setAlpha(150)
    hint.setStyleSheet(f"color: {muted.name(QColor.NameFormat.HexArgb)};")
    return hint
