"""Compare runs: the same metric of each run overlaid (by global step, or by step within one
stage), and a side-by-side diff of two runs' plans."""

from __future__ import annotations

import difflib
import html
import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.model.run_series import Curve, RunSeries
from app.qt.qt_curve_plot import COLOURS, QtCurvePlot

EMPTY_TEXT = "No runs yet: select two or more runs under Experiments and press Compare."


class _Loader(QObject):
    loaded = Signal(object)  # list of (label, RunSeries, plan text)

    def load(self, store, run_ids: list[str]) -> None:
        from engine.store import queries
        from engine.store.browse import read_history

        def work() -> None:
            out = []
            for run_id in run_ids:
                info = queries.get_run(store, run_id)
                exp = queries.get_experiment(store, info.experiment_id)
                run = RunSeries(run_id, status=info.status)
                for stage in queries.list_stages(store, run_id):
                    run.update_stage(stage.__dict__)
                for stage, key, steps, values in read_history(store, run_id, 2**62):
                    run.add_series(key, stage, steps, values)
                out.append((f"{exp.name} · run {info.number} ({run_id[:6]})", run, info.plan_text))
            self.loaded.emit(out)

        threading.Thread(target=work, name="stagelab-compare", daemon=True).start()


class QtCompareView(QWidget):
    """Shows the runs given to `compare`."""

    def __init__(self, store_factory, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareView")
        self.setAccessibleName("Compare runs")
        self.store = store_factory
        self.runs: list[tuple[str, RunSeries, str]] = []
        self.metric_box = QComboBox()
        self.metric_box.setObjectName("compareMetric")
        self.align = QComboBox()
        self.align.setObjectName("compareAlign")
        self.align.setToolTip(
            "Global step: the whole runs side by side. A stage: that stage of "
            "each run from its own step 0."
        )
        self.left, self.right = QComboBox(), QComboBox()
        for combo in (self.metric_box, self.align):
            combo.currentIndexChanged.connect(self.draw)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for combo in (self.left, self.right):
            combo.currentIndexChanged.connect(self.diff)
        # Run labels are long: listed under the axis, three to a row on this wide plot.
        self.plot = QtCurvePlot("Compare", "", legend="below", legend_columns=3)
        self.plot.setObjectName("comparePlot")
        self.status = QLabel(EMPTY_TEXT)
        self.status.setObjectName("compareStatus")
        self.status.setWordWrap(True)
        self.left_text, self.right_text = QTextEdit(), QTextEdit()
        for text in (self.left_text, self.right_text):
            text.setReadOnly(True)
            text.setLineWrapMode(QTextEdit.LineWrapMode.NoWrap)
            text.setFontFamily("monospace")
        self.right_text.verticalScrollBar().valueChanged.connect(
            self.left_text.verticalScrollBar().setValue
        )
        self.left_text.verticalScrollBar().valueChanged.connect(
            self.right_text.verticalScrollBar().setValue
        )

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Metric"))
        bar.addWidget(self.metric_box)
        bar.addWidget(QLabel("Align by"))
        bar.addWidget(self.align)
        bar.addStretch(1)
        bar.addWidget(self.status)
        diff_bar = QHBoxLayout()
        diff_bar.addWidget(QLabel("Plan of"))
        diff_bar.addWidget(self.left, 1)
        diff_bar.addWidget(QLabel("against"))
        diff_bar.addWidget(self.right, 1)
        texts = QSplitter()
        texts.addWidget(self.left_text)
        texts.addWidget(self.right_text)
        diff = QWidget()
        diff_layout = QVBoxLayout(diff)
        diff_layout.setContentsMargins(0, 0, 0, 0)
        diff_layout.addLayout(diff_bar)
        diff_layout.addWidget(texts, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)  # a small window never hides a part
        split.addWidget(self.plot)
        split.addWidget(diff)
        split.setSizes([520, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self.loader = _Loader(self)
        self.loader.loaded.connect(self._loaded)

    def compare(self, run_ids: list[str]) -> None:
        self.status.setText(f"Loading {len(run_ids)} runs…")
        self.loader.load(self.store(), run_ids)

    def _loaded(self, runs) -> None:
        self.runs = runs
        keys = sorted({k for _, run, _ in runs for k in run.keys()}, key=_metric_order)
        for combo, items in (
            (self.metric_box, keys),
            (self.left, [r[0] for r in runs]),
            (self.right, [r[0] for r in runs]),
        ):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(items)
            combo.blockSignals(False)
        self.align.blockSignals(True)
        self.align.clear()
        self.align.addItem("Global step", None)
        # Stages of every run (a later run may have more, or other names).
        names: dict[int, list[str]] = {}
        for _, run, _ in runs:
            for idx, stage in run.stages.items():
                if stage.name not in names.setdefault(idx, []):
                    names[idx].append(stage.name)
        for idx in sorted(names):
            self.align.addItem(f"Stage {idx + 1}: {' / '.join(names[idx])}", idx)
        self.align.blockSignals(False)
        self.right.setCurrentIndex(min(1, len(runs) - 1))
        self.status.setText(f"{len(runs)} runs" if runs else EMPTY_TEXT)
        self.draw()
        self.diff()

    def draw(self) -> None:
        key, stage = self.metric_box.currentText(), self.align.currentData()
        self.plot.clear_curves()
        self.plot.getPlotItem().setTitle(key)
        self.plot.getPlotItem().setLabel(
            "bottom", "global step" if stage is None else "step in stage"
        )
        ends = {}
        for i, (label, run, _) in enumerate(self.runs):
            if stage is None:
                curve = Curve(key)
                curve.sync(run, 0.0)
                x, y = curve.arrays()
            else:
                x, y = run.stage_xy(key, stage)
            if len(x):
                self.plot.set_curve(
                    label,
                    x,
                    y,
                    colour=QColor(COLOURS[i % len(COLOURS)]),
                    symbols=key.startswith("eval/"),
                )
                ends[label] = float(x[-1])
        # A shorter run is drawn over a longer one, or its curve would hide under it.
        for z, label in enumerate(sorted(ends, key=ends.get, reverse=True)):
            self.plot.curves[label].setZValue(z)
        self.plot.set_boundaries(self.boundary_marks() if stage is None else [])

    def boundary_marks(self) -> list[tuple[float, str, str | None]]:
        """Stage starts of every run: one neutral line where all runs share it, else a
        line in the colour of each run it belongs to."""
        where: dict[tuple[float, str], list[int]] = {}
        for i, (_, run, _) in enumerate(self.runs):
            for x, name in run.boundaries():
                where.setdefault((x, name), []).append(i)
        return [
            (x, name, None if len(runs) == len(self.runs) else COLOURS[runs[0] % len(COLOURS)])
            for (x, name), runs in sorted(where.items())
        ]

    def diff(self) -> None:
        if not self.runs:
            return
        a = self.runs[self.left.currentIndex()][2].splitlines()
        b = self.runs[self.right.currentIndex()][2].splitlines()
        left, right = plan_diff_html(a, b)
        self.left_text.setHtml(left)
        self.right_text.setHtml(right)
        first = first_change(a, b)
        if first is not None:  # show the first difference, a few lines of context above
            block = self.left_text.document().findBlockByNumber(max(first - 4, 0))
            layout = self.left_text.document().documentLayout()
            self.left_text.verticalScrollBar().setValue(int(layout.blockBoundingRect(block).top()))


def plan_diff_html(a: list[str], b: list[str]) -> tuple[str, str]:
    """Two aligned HTML columns: removed lines red on the left, added green on the right,
    changed lines amber on both; blank filler keeps the sides level."""
    left, right = [], []

    def line(text: str | None, colour: str | None) -> str:
        if text is None:
            return "<div>&nbsp;</div>"
        style = f' style="background:{colour}; color:black"' if colour else ""
        return f"<div{style}>{html.escape(text) or '&nbsp;'}</div>"

    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left += [line(t, None) for t in a[i1:i2]]
            right += [line(t, None) for t in b[j1:j2]]
            continue
        colour_a = {"replace": "#ffe8a8", "delete": "#ffc9c9"}.get(op)
        colour_b = {"replace": "#ffe8a8", "insert": "#c9f2c9"}.get(op)
        n = max(i2 - i1, j2 - j1)
        for k in range(n):
            left.append(line(a[i1 + k] if i1 + k < i2 else None, colour_a))
            right.append(line(b[j1 + k] if j1 + k < j2 else None, colour_b))
    wrap = '<div style="font-family:monospace; white-space:pre">{}</div>'
    return wrap.format("".join(left)), wrap.format("".join(right))


def first_change(a: list[str], b: list[str]) -> int | None:
    """Row of the first differing line in the two-column view, or None if equal."""
    row = 0
    for op, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op != "equal":
            return row
        row += i2 - i1
    return None


def _metric_order(key: str) -> tuple[int, str]:
    preferred = ("train/loss", "eval/loss", "eval/accuracy", "eval/f1", "train/lr")
    return (preferred.index(key) if key in preferred else len(preferred), key)
