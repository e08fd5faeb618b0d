"""Compare runs: the same metric of each run overlaid (by global step, or by step within one
stage), and a side-by-side diff of two runs' plans (worked out in app/model/plan_diff.py)."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.model.panels import default_layout
from app.model.plan_diff import Change, plan_changes, plan_diff_html, same_layout
from app.model.run_series import RunSeries
from app.model.samples import NO_SAMPLES, compare_table
from app.model.smoothing import smoothed
from app.qt.compare.qt_compare_panels import ComparePanelsMixin, QtComparePanels, smoothed_xy
from app.qt.monitor.qt_samples import QtSamplesTable
from app.qt.qt_curve_plot import COLOURS, QtCurvePlot
from app.qt.qt_elided_label import QtElidedLabel

EMPTY_TEXT = "No runs yet: select two or more runs under Experiments and press Compare."


class _Loader(QObject):
    loaded = Signal(object)  # list of (label, RunSeries, plan text)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.experiments: dict[str, str] = {}  # run id -> its experiment's name

    def load(self, store, run_ids: list[str]) -> None:
        from app.model.run_series import read_reused
        from app.qt.monitor.qt_history_loader import read_clock
        from engine.store import queries
        from engine.store.browse import read_history
        from engine.store.stream import read_events

        def work() -> None:
            out = []
            for run_id in run_ids:
                info = queries.get_run(store, run_id)
                exp = queries.get_experiment(store, info.experiment_id)
                self.experiments[run_id] = exp.name
                run = RunSeries(run_id, status=info.status)
                for stage in queries.list_stages(store, run_id):
                    run.update_stage(stage.__dict__)
                for stage, key, steps, values in read_history(store, run_id, 2**62):
                    run.add_series(key, stage, steps, values)
                for stage, steps, walls in read_clock(store, run_id):  # x by wall time
                    run.add_clock(stage, steps, walls)
                run.events = read_events(store, run_id, 2**62)  # the Samples tab reads them
                # A reused stage's curves are the points of the run that trained it.
                for idx, source, series in read_reused(
                    store, info.experiment_id, run.reused_sources()
                ):
                    run.add_reused(idx, source, series)
                out.append((f"{exp.name} · run {info.number} ({run_id[:6]})", run, info.plan_text))
            self.loaded.emit(out)

        threading.Thread(target=work, name="stagelab-compare", daemon=True).start()


class QtCompareView(ComparePanelsMixin, QWidget):
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
        self.panels = QtComparePanels()
        self.panels.axisChosen.connect(self.set_panel_layout)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("compareTabs")
        self.tabs.addTab(self.plot, "Metric")
        self.tabs.addTab(self.panels, "Panels")
        self.samples = QtSamplesTable(empty=NO_SAMPLES)  # the same inputs across the runs
        self.tabs.addTab(self.samples, "Samples")
        self.tabs.currentChanged.connect(lambda _: self.draw())
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("compareSmoothing")
        self.smoothing.setAccessibleName("Smoothing")
        self.smoothing.setRange(0, 99)
        self.smoothing.setMaximumWidth(120)
        self.smoothing.setToolTip(
            "Debiased exponential moving average, as in the monitor; raw curves faint behind"
        )
        self.smoothing.valueChanged.connect(self.draw)
        self.panels_button = QPushButton("Panels…")
        self.panels_button.setObjectName("comparePanelsButton")
        self.panels_button.setToolTip(
            "Choose the panels (the first run's experiment's, shared with the monitor)"
        )
        self.panels_button.clicked.connect(self.edit_panels)
        self.panel_layout = default_layout()
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
        # Where the two plans differ: each block of changed lines, stepped through.
        self.changes: list[Change] = []
        self.change_index = -1
        self.previous_change = QPushButton("Previous change")
        self.previous_change.setObjectName("comparePreviousChange")
        self.previous_change.setToolTip("Scroll the plan diff to the change above")
        self.previous_change.clicked.connect(lambda: self.show_change(self.change_index - 1))
        self.next_change = QPushButton("Next change")
        self.next_change.setObjectName("compareNextChange")
        self.next_change.setToolTip("Scroll the plan diff to the change below")
        self.next_change.clicked.connect(lambda: self.show_change(self.change_index + 1))
        self.change_text = QtElidedLabel(min_chars=12)
        self.change_text.setObjectName("compareChange")

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Metric"))
        bar.addWidget(self.metric_box)
        bar.addWidget(QLabel("Align by"))
        bar.addWidget(self.align)
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing)
        bar.addWidget(self.panels_button)
        bar.addStretch(1)
        bar.addWidget(self.status)
        diff_bar = QHBoxLayout()
        diff_bar.addWidget(QLabel("Plan of"))
        diff_bar.addWidget(self.left, 1)
        diff_bar.addWidget(QLabel("against"))
        diff_bar.addWidget(self.right, 1)
        diff_bar.addWidget(self.previous_change)
        diff_bar.addWidget(self.next_change)
        diff_bar.addWidget(self.change_text, 1)
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
        split.addWidget(self.tabs)
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
        self.samples.set_table(compare_table((label, run.events) for label, run, _ in runs))
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
        self.panel_layout = self._saved_panels()
        self.status.setText(f"{len(runs)} runs" if runs else EMPTY_TEXT)
        self.draw()
        self.diff()

    def draw(self) -> None:
        weight = self.smoothing.value() / 100
        if self.tabs.currentWidget() is self.panels:
            self.panels.draw(self.runs, self.panel_layout, weight)
            return
        key, stage = self.metric_box.currentText(), self.align.currentData()
        self.plot.clear_curves()
        self.plot.getPlotItem().setTitle(key)
        self.plot.getPlotItem().setLabel(
            "bottom", "global step" if stage is None else "step in stage"
        )
        ends = {}
        for i, (label, run, _) in enumerate(self.runs):
            colour = QColor(COLOURS[i % len(COLOURS)])
            trained, reused = self._run_xy(run, key, stage, weight)
            if len(trained[0]):
                self.plot.set_curve(label, *trained, colour=colour, symbols=key.startswith("eval/"))
                ends[label] = float(trained[0][-1])
            if len(reused[0]):
                # Points this run did not train (the stage cache reused another run's
                # stage): that run's curve, dashed and faded in this run's colour.
                faded = QColor(colour)
                faded.setAlpha(150)
                name = f"{label} (reused)"
                self.plot.set_curve(
                    name,
                    *reused,
                    colour=faded,
                    dashed=True,
                    symbols=key.startswith("eval/"),
                    legend=label not in self.plot.curves,
                )
                ends[name] = float(reused[0][-1])
                if label in self.plot.curves:  # hiding the run (legend) hides all of it
                    main, part = self.plot.curves[label], self.plot.curves[name]
                    main.visibleChanged.connect(lambda m=main, p=part: p.setVisible(m.isVisible()))
        # A shorter run is drawn over a longer one, or its curve would hide under it.
        for z, label in enumerate(sorted(ends, key=ends.get, reverse=True)):
            self.plot.curves[label].setZValue(z)
        self.plot.set_boundaries(self.boundary_marks() if stage is None else [])

    @staticmethod
    def _run_xy(run: RunSeries, key: str, stage: int | None, weight: float = 0.0):
        """(x, y, raw y or None) of what the run trained and of what it reused, by global
        step or by step within one stage, smoothed by `weight`."""
        if stage is not None:
            x, y = run.stage_xy(key, stage)
            sparse = key.startswith(("eval/", "test/", "teacher/")) or key == "train/lr"
            xy = (x, smoothed(y, weight), y) if weight and not sparse else (x, y, None)
            empty = (np.empty(0), np.empty(0), None)
            return (empty, xy) if run.is_reused(stage) else (xy, empty)
        trained = smoothed_xy(run, key, weight, "trained")
        return trained, smoothed_xy(run, key, weight, "reused")

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
            self.changes, self.change_index = [], -1
            self._update_change_buttons()
            return
        a, b = same_layout(
            self.runs[self.left.currentIndex()][2], self.runs[self.right.currentIndex()][2]
        )
        a, b = a.splitlines(), b.splitlines()
        left, right = plan_diff_html(a, b)
        self.left_text.setHtml(left)
        self.right_text.setHtml(right)
        self.changes = plan_changes(a, b)
        self.change_index = -1
        self.show_change(0)  # the first difference, if any

    def show_change(self, index: int) -> None:
        """Scroll the diff to change `index` (a few lines of context above it), put both
        sides' cursors on its first line and draw its lines in bold."""
        if not 0 <= index < len(self.changes):
            self._update_change_buttons()
            return
        self.change_index = index
        change = self.changes[index]
        for text in (self.left_text, self.right_text):
            cursor = QTextCursor(text.document().findBlockByNumber(change.row))
            text.setTextCursor(cursor)
            selections = []
            for row in range(change.row, change.row + change.rows):
                selection = QTextEdit.ExtraSelection()
                selection.cursor = QTextCursor(text.document().findBlockByNumber(row))
                selection.cursor.select(QTextCursor.SelectionType.BlockUnderCursor)
                selection.format.setFontWeight(QFont.Weight.Bold)
                selections.append(selection)
            text.setExtraSelections(selections)
        self._reveal_change()
        self._update_change_buttons()

    def _reveal_change(self) -> None:
        """The current change a few lines below the top of the diff, and in view however
        short the diff is (the two sides scroll together)."""
        if not 0 <= self.change_index < len(self.changes):
            return
        row = self.changes[self.change_index].row
        block = self.left_text.document().findBlockByNumber(max(row - 4, 0))
        layout = self.left_text.document().documentLayout()
        self.left_text.verticalScrollBar().setValue(int(layout.blockBoundingRect(block).top()))
        self.left_text.ensureCursorVisible()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        QTimer.singleShot(0, self._reveal_change)  # once the diff has its new height

    def _update_change_buttons(self) -> None:
        n, i = len(self.changes), self.change_index
        self.previous_change.setEnabled(i > 0)
        self.next_change.setEnabled(0 <= i < n - 1)
        if not self.runs:
            self.change_text.setText("")
        elif not n:
            self.change_text.setText("the plans are the same")
        else:
            change = self.changes[i]
            self.change_text.setText(f"change {i + 1} of {n}: {change.summary}")


def _metric_order(key: str) -> tuple[int, str]:
    preferred = ("train/loss", "eval/loss", "eval/accuracy", "eval/f1", "train/lr")
    return (preferred.index(key) if key in preferred else len(preferred), key)
