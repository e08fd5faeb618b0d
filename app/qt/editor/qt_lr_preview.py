"""The learning rate over the whole plan, stage boundaries marked and labelled; redrawn
when the plan changes."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor

from app.model.lr_plan import StageCurve, plan_curve
from app.model.plan_document import PlanDocument
from app.qt.qt_look import is_dark, kind_color


class QtLrPreview(pg.PlotWidget):
    """One curve per stage in the stage kind's colour; dashed where the step count is a
    guess (Hub data, data not chosen yet)."""

    def __init__(self, doc: PlanDocument, parent=None):
        dark = is_dark(parent.palette()) if parent is not None else False
        super().__init__(parent, background=QColor("#1f2023" if dark else "#ffffff"))
        self.setObjectName("lrPreview")
        self.setAccessibleName("Learning-rate preview")
        self.curves: list[StageCurve] = []
        self._items: list = []
        self.plotItem.setLabel("bottom", "optimizer step (whole plan)")
        self.plotItem.setLabel("left", "learning rate")
        self.plotItem.showGrid(x=True, y=True, alpha=0.15)
        self.plotItem.setMenuEnabled(False)
        self.plotItem.getAxis("left").enableAutoSIPrefix(False)
        self.plotItem.getAxis("left").setWidth(64)
        self._pending = QTimer(self, singleShot=True, interval=50)  # coalesce bursts of edits
        self._pending.timeout.connect(self.refresh)
        self.set_document(doc)

    def set_document(self, doc: PlanDocument) -> None:
        """Follow another plan."""
        self.doc = doc
        doc.changed.connect(lambda *_: self._pending.start())
        self.refresh()

    def refresh(self) -> None:
        """Recompute and redraw the curve."""
        self.curves = plan_curve(self.doc.stages, self.doc.plan_dir)
        for item in self._items:
            self.plotItem.removeItem(item)
        self._items = []
        kinds = [s.get("kind", "") if isinstance(s, dict) else "" for s in self.doc.stages]
        top = max((max(c.lr) for c in self.curves if c.lr), default=1.0) or 1.0
        for curve, kind in zip(self.curves, kinds, strict=True):
            color = kind_color(str(kind))
            pen = pg.mkPen(
                color,
                width=2,
                style=pg.QtCore.Qt.PenStyle.DashLine
                if curve.estimate
                else pg.QtCore.Qt.PenStyle.SolidLine,
            )
            line = self.plotItem.plot(curve.x, curve.lr, pen=pen)
            note = (
                f" (~{curve.steps} steps: {curve.estimate})"
                if curve.estimate
                else f" ({curve.steps} steps)"
            )
            boundary = pg.InfiniteLine(
                pos=curve.start,
                angle=90,
                pen=pg.mkPen(color, width=1, style=pg.QtCore.Qt.PenStyle.DotLine),
                # pyqtgraph formats the label: braces in a (malformed) name stay text
                label=boundary_label(curve.name, curve.steps),
                labelOpts={
                    # four rows in turn, so neighbouring labels of short stages do not overlap
                    "position": 0.93 - 0.1 * (len(self._items) // 2 % 4),
                    "color": color,
                    "anchors": [(0, 0), (0, 0)],
                },
            )
            boundary.setToolTip(curve.name + note)
            line.setToolTip(curve.name + note)
            self.plotItem.addItem(boundary)
            self._items += [line, boundary]
        self.plotItem.setYRange(0, top * 1.12, padding=0)
        end = sum(c.steps for c in self.curves)
        # An empty plan gets an empty axis, not the last plan's.
        self.plotItem.setXRange(0, end or 100, padding=0.01)

    def points(self) -> list[tuple[int, float]]:
        """Every (global step, learning rate) point drawn, in order."""
        return [(x, lr) for c in self.curves for x, lr in zip(c.x, c.lr, strict=True)]


LABEL_CHARS = 24  # a longer stage name is shortened in the plot (whole in the tooltip)


def boundary_label(name: str, steps: int) -> str:
    """The label at a stage's start: its name (shortened) and step count. pyqtgraph
    formats the label, so braces in a (malformed) name are doubled to stay text."""
    short = name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"
    return f"{short} · {steps} steps".replace("{", "{{").replace("}", "}}")
