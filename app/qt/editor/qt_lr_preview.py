"""The learning rate over the whole plan, stage boundaries marked and labelled; redrawn
when the plan changes."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor

from app.model.lr_plan import StageCurve, plan_curve
from app.model.plan_document import PlanDocument
from app.qt.qt_look import is_dark, kind_color
from app.qt.qt_plot_labels import place_line_labels


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
        self._boundaries: list[pg.InfiniteLine] = []
        # Labels are placed in pixels: again whenever the view's range or size changes.
        self.plotItem.getViewBox().sigResized.connect(lambda *_: self._place_labels())
        self.plotItem.getViewBox().sigRangeChanged.connect(lambda *_: self._place_labels())
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
        self._items, self._boundaries = [], []
        kinds = [s.get("kind", "") if isinstance(s, dict) else "" for s in self.doc.stages]
        top = max((max(c.lr) for c in self.curves if c.lr), default=1.0) or 1.0
        for i, (curve, kind) in enumerate(zip(self.curves, kinds, strict=True)):
            color = kind_color(str(kind))
            names = self._label_names(i)
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
                label=boundary_label(names, curve.steps, str(kind)) if names else None,
                # Rows and sides are set by _place_labels, in pixels.
                labelOpts={"position": 0.97, "color": color, "anchors": [(0, 0), (0, 0)]},
            )
            boundary.setToolTip(curve.name + note)
            line.setToolTip(curve.name + note)
            self.plotItem.addItem(boundary)
            self._items += [line, boundary]
            if names:  # stages that train nothing at one place share one label
                self._boundaries.append(boundary)
        # Room above the highest rate for a few rows of labels.
        self.plotItem.setYRange(0, top * 1.3, padding=0)
        end = sum(c.steps for c in self.curves)
        # An empty plan gets an empty axis, not the last plan's.
        self.plotItem.setXRange(0, end or 100, padding=0.01)
        self._place_labels()

    def _label_names(self, index: int) -> list[str]:
        """The name(s) on stage `index`'s label: stages of no steps at one place (a row of
        ensembles) are named together on the first one's label, nothing on the others."""
        curves = self.curves
        if (
            index > 0
            and not curves[index - 1].steps
            and curves[index - 1].start == curves[index].start
        ):
            return []
        names = [curves[index].name]
        for later in curves[index + 1 :]:
            if curves[index].steps or later.steps or later.start != curves[index].start:
                break
            names.append(later.name)
        return names

    def _place_labels(self) -> None:
        place_line_labels(self.plotItem.getViewBox(), self._boundaries)

    def label_rects(self) -> list:
        """Where each shown stage label is drawn (scene coordinates), in plan order."""
        return [b.label.sceneBoundingRect() for b in self._boundaries if b.label.isVisible()]

    def points(self) -> list[tuple[int, float]]:
        """Every (global step, learning rate) point drawn, in order."""
        return [(x, lr) for c in self.curves for x, lr in zip(c.x, c.lr, strict=True)]


LABEL_CHARS = 24  # a longer stage name is shortened in the plot (whole in the tooltip)


def boundary_label(names: list[str], steps: int, kind: str = "") -> str:
    """The label at a stage's start: its name (shortened) and step count ("evaluation
    only" for an ensemble). pyqtgraph formats the label, so braces in a (malformed) name
    are doubled to stay text."""
    short = " · ".join(n if len(n) <= LABEL_CHARS else n[: LABEL_CHARS - 1] + "…" for n in names)
    length = "evaluation only" if kind in ("ensemble", "merge") and not steps else f"{steps} steps"
    return f"{short} · {length}".replace("{", "{{").replace("}", "}}")
