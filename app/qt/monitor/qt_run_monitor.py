"""The run monitor: one run's progress, curves, latest confusion matrix, GPU graphs and log,
with pause / resume / stop and exports.

Opening a run back-fills its curves from the store on a worker thread (the event loop
never waits on SQLite), then follows the engine's channel from the stored position, so a
reopened window shows the complete history and then goes live. Curves are redrawn from a
timer (10 Hz), never per message."""

from __future__ import annotations

import threading
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.model.run_series import RunSeries
from app.qt.monitor.qt_confusion import QtConfusionMatrix
from app.qt.monitor.qt_ensemble_report import QtEnsembleReport
from app.qt.monitor.qt_progress_panel import QtProgressPanel
from app.qt.monitor.qt_run_channel import QtRunChannel
from app.qt.monitor.qt_run_log import QtRunLog, status_note
from app.qt.monitor.qt_run_plots import QtRunPlots
from app.qt.qt_curve_plot import QtCurvePlot
from app.qt.qt_elided_label import QtElidedLabel
from engine.store.status import LIVE, NOT_ENDED, RESUMABLE, RunStatus, StageStatus

REDRAW_MS = 100
POLL_MS = 2000  # how often the store is asked whether a silent engine is still alive
VEIL_Z = 5  # a reused stage's veil: over the curves, under the hover readout (10)


class HistoryLoader(QObject):
    """Reads a run's stored record on a worker thread: stages and events first, then the
    series in chunks (the curves fill in as they arrive)."""

    header = Signal(str, object, object, object)  # run id, planned stages, stages, events
    series = Signal(int, str, object, object)  # stage, key, steps, values
    # run id, reused stage, its source's name ("reused from run 2"), the source's series
    reused = Signal(str, int, str, object)
    done = Signal(str, int)  # run id, stream position loaded up to

    def load(self, store, run_id: str) -> None:
        from engine.store import queries
        from engine.store.browse import read_history
        from engine.store.stream import read_events

        def work() -> None:
            # The position first: everything read below is at or before it, and the live
            # stream continues after it, so nothing is missed or drawn twice.
            upto = queries.max_seq(store, run_id)
            planned = planned_stages(queries.get_run(store, run_id))
            stages = [stage.__dict__ for stage in queries.list_stages(store, run_id)]
            self.header.emit(run_id, planned, stages, read_events(store, run_id, upto))
            # One series at a time (a few hundred blob reads per million points); a pause
            # after each lets the GUI thread take the interpreter lock back at once.
            for stage, key, steps, values in read_history(store, run_id, upto):
                self.series.emit(stage, key, steps.astype(np.float64), values)
                time.sleep(0.0005)
            # Reused stages were trained by another run: their curves are its points.
            run = RunSeries(run_id)
            for stage in stages:
                run.update_stage(stage)
            self._read_reused(store, run_id, run.reused_sources())
            self.done.emit(run_id, upto)

        threading.Thread(target=work, name="stagelab-history", daemon=True).start()

    def load_reused(self, store, run_id: str, sources: dict[int, tuple[str, int]]) -> None:
        """The source points of stages that became reused while the run is followed."""
        threading.Thread(
            target=self._read_reused,
            args=(store, run_id, sources),
            name="stagelab-reused",
            daemon=True,
        ).start()

    def _read_reused(self, store, run_id: str, sources: dict[int, tuple[str, int]]) -> None:
        from app.model.run_series import read_reused
        from engine.store import queries

        if sources:
            experiment = queries.get_run(store, run_id).experiment_id
            for stage, label, series in read_reused(store, experiment, sources):
                self.reused.emit(run_id, stage, label, series)


class QtRunMonitor(QWidget):
    """Shows one run at a time (`open_run`)."""

    statusChanged = Signal(str, str)  # run id, status
    resumeRequested = Signal(str)  # run id: the window restarts its engine

    def __init__(self, store_factory, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runMonitor")
        self.setAccessibleName("Run monitor")
        self.store = store_factory
        self.run: RunSeries | None = None
        self.info = None
        self.channel: QtRunChannel | None = None
        self.loading = False
        self.history_s: float | None = None
        self.cursor_seen = 0  # newest stream position shown
        self.starting_until = 0.0  # a (re)started engine has until then to claim the run
        self.reused_asked: set[int] = set()  # reused stages whose source points were read
        self._veils: list[tuple[QtCurvePlot, object]] = []  # reused stages' shading
        self.reused_spans: list[tuple[float, float, str]] = []  # (x0, x1, label) veiled

        self.title = QtElidedLabel("No run open. Press Run, or open a run from Experiments.")
        self.title.setObjectName("runTitle")
        self.badge = QLabel()
        self.badge.setObjectName("runStatus")
        self.pause_button = self._button("Pause", "pauseButton", lambda: self._send("pause"))
        self.resume_button = self._button("Resume", "resumeButton", self.resume)
        self.stop_button = self._button("Stop", "stopButton", self.stop)
        from app.qt.monitor.qt_run_exports import export_menu

        self.export_button = self._button("Export", "exportButton", None)
        self.export_button.setMenu(export_menu(self))
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.badge)
        for button in (self.pause_button, self.resume_button, self.stop_button, self.export_button):
            header.addWidget(button)

        self.progress = QtProgressPanel()
        self.plots = QtRunPlots()
        self.plots.smoothingChanged.connect(lambda _: self._redraw())
        self.confusion = QtConfusionMatrix()
        self.gpu_memory = QtCurvePlot("GPU memory", "GiB", x_label="seconds", hint="No GPU.")
        self.gpu_load = QtCurvePlot("GPU utilisation", "%", x_label="seconds", hint="No GPU.")
        gpu = QWidget()
        gpu_layout = QVBoxLayout(gpu)
        self.gpu_note = QLabel()
        self.gpu_note.setWordWrap(True)
        for widget in (self.gpu_note, self.gpu_memory, self.gpu_load):
            gpu_layout.addWidget(widget)
        self.console = QtRunLog()
        self.side = QTabWidget()
        self.side.setObjectName("monitorSideTabs")
        # Whole titles, never scrolled out of sight ("n matrix") on a narrow side panel.
        self.side.setUsesScrollButtons(False)
        self.side.setMinimumWidth(220)
        self.ensemble = QtEnsembleReport()
        self.side.addTab(self.confusion, "Confusion")
        self.side.addTab(gpu, "GPU")
        self.side.addTab(self.console, "Log")
        # An ensemble stage reports a table, not curves: its tab shows once one has.
        self.side.addTab(self.ensemble, "Ensemble")
        self.side.setTabVisible(3, False)
        self.side.setCurrentIndex(2)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(self.plots)
        split.addWidget(self.side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([1000, 380])
        # Problems of the record itself (database writes failing, rows set aside): said
        # above the curves, not only in the log, since they decide what the curves hold.
        self.record_warning = QLabel()
        self.record_warning.setObjectName("recordWarning")
        self.record_warning.setAccessibleName("Record warning")
        self.record_warning.setWordWrap(True)
        self.record_warning.setStyleSheet(
            "QLabel { background: #fde9e7; color: #7a1c12; border: 1px solid #d55e00;"
            " border-radius: 3px; padding: 4px 6px; }"
        )
        self.record_warning.hide()
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.record_warning)
        layout.addWidget(self.progress)
        layout.addWidget(split, 1)

        self.loader = HistoryLoader(self)
        self.loader.header.connect(self._history_header)
        self.loader.series.connect(self._history_series)
        self.loader.reused.connect(self._reused_series)
        self.loader.done.connect(self._history_done)
        self.redraw_timer = QTimer(self, interval=REDRAW_MS, timeout=self._redraw)
        self.poll_timer = QTimer(self, interval=POLL_MS, timeout=self._poll)
        self._update_buttons()

    def _button(self, text: str, name: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setAccessibleName(text)
        if slot is not None:
            button.clicked.connect(slot)
        return button

    # -- opening a run ----------------------------------------------------------------------

    def open_run(self, run_id: str) -> None:
        """Show a run: stored history first (worker thread), then live."""
        from engine.store import queries

        self.close_run()
        store = self.store()
        self.info = queries.get_run(store, run_id)
        experiment = queries.get_experiment(store, self.info.experiment_id)
        self.experiment = experiment
        self.run = RunSeries(run_id, status=self.info.status)
        self.reused_asked = set()
        self._show_reused([])
        self.title.setText(f"{experiment.name} · run {self.info.number} · {run_id}")
        self.progress.clear()
        self.plots.clear()
        self.console.clear_lines()
        self.ensemble.show_reports({})
        self.side.setTabVisible(3, False)
        self.record_warning.hide()
        self.gpu_memory.clear_curves()
        self.gpu_load.clear_curves()
        for plot in (self.gpu_memory, self.gpu_load):  # said in the empty plots
            plot.set_hint(
                "GPU memory and utilisation appear here while the run trains on a GPU."
                if self.info.gpus not in ("", "cpu")
                else "This run trains on the CPU: there are no GPU graphs."
            )
        self.loading, self._opened_at = True, time.perf_counter()
        self.badge.setText(self._badge_text("loading history…"))
        self.loader.load(store, run_id)
        self.redraw_timer.start()
        self.poll_timer.start()
        self._redraw()

    def _history_header(self, run_id: str, planned: list, stages: list, events: list) -> None:
        if self.run is not None and self.loading and run_id == self.run.run_id:
            self.run.plan_stages(planned)
            for stage in stages:
                self.run.update_stage(stage)
            for event in events:
                self.run.add_event(event, live=False)

    def _history_series(self, stage: int, key: str, steps, values) -> None:
        if self.run is not None and self.loading:
            self.run.add_series(key, stage, steps, values)

    def _reused_series(self, run_id: str, stage: int, label: str, series: list) -> None:
        if self.run is not None and run_id == self.run.run_id:
            self.reused_asked.add(stage)
            self.run.add_reused(stage, label, series)

    def _load_new_reused(self) -> None:
        """A stage the engine has just reused (live): read its source's points. A catch-up
        `stage` frame says "reused" without the source: the stage row names it."""
        from engine.store import queries

        unnamed = {
            i
            for i, s in self.run.stages.items()
            if s.status == StageStatus.REUSED and not s.reused_from
        }
        if unnamed:
            for stage in queries.list_stages(self.store(), self.run.run_id):
                if stage.idx in unnamed and stage.reused_from:
                    self.run.update_stage(stage.__dict__)
        wanted = {
            idx: source
            for idx, source in self.run.reused_sources().items()
            if idx not in self.reused_asked
        }
        if wanted:
            self.reused_asked |= set(wanted)
            self.loader.load_reused(self.store(), self.run.run_id, wanted)

    def _history_done(self, run_id: str, upto: int) -> None:
        if self.run is None or run_id != self.run.run_id:
            return
        self.loading = False
        self.cursor_seen = upto
        self.history_s = time.perf_counter() - self._opened_at
        self._set_status(self.run.status)
        self._redraw()
        if self.run.status in NOT_ENDED:
            self._follow(upto)

    def _follow(self, after: int) -> None:
        self._stop_channel()
        self.channel = QtRunChannel(self.info.run_dir, self)
        self.channel.message.connect(self._message)
        self.channel.ended.connect(self._channel_ended)
        self.channel.commandDone.connect(self._command_done)
        self.channel.follow(after)

    def _message(self, message: dict) -> None:
        if self.run is None:
            return
        kind = message.get("type")
        self.run.apply(message, wall_s=time.time())
        if kind in ("stage", "welcome") and not self.loading:
            self._load_new_reused()
        if kind in ("status", "bye", "welcome"):
            self._set_status(self.run.status)
        elif kind == "error":
            self.console.append_lines(f"channel: {message.get('message')}")

    def _channel_ended(self, status: str) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.deleteLater()
        self._poll()

    def _poll(self) -> None:
        """Ask the store for the run's status (a crashed engine shows `interrupted`) and
        follow the channel again when the run is live but not followed (engine starting)."""
        if self.run is None or self.loading:
            return
        from engine.store import queries

        info = queries.get_run(self.store(), self.run.run_id)
        self.info = info
        self._load_new_reused()  # a reuse whose row was not yet written when it was said
        starting = time.monotonic() < self.starting_until
        if info.status in LIVE:
            self.starting_until = 0.0
            if self.channel is None:
                self._follow(self._cursor())
        elif starting:
            return  # the new engine has not claimed the run yet
        if self.channel is None or info.status not in NOT_ENDED:
            self._set_status(info.status)

    def _cursor(self) -> int:
        """Where to follow from: what is shown, but no further than what is stored (points a
        dead engine sent but never stored are retrained by the next one)."""
        from engine.store import queries

        return min(queries.max_seq(self.store(), self.run.run_id), self.cursor_seen)

    def _set_status(self, status: str) -> None:
        if self.run is None:
            return
        before = getattr(self, "_shown_status", None)
        changed = status != before
        note = status_note(before, status)  # pause / resume are in no stored event
        if note:
            self.console.append_lines(_log_line({"kind": "status", "message": note}, time.time()))
        self.run.status = status
        self.run.dirty.add("@status")  # the progress words follow the badge
        self._shown_status = status
        self.badge.setText(self._badge_text(status))
        self._update_buttons()
        if changed:
            self.statusChanged.emit(self.run.run_id, status)

    def _badge_text(self, status: str) -> str:
        from app.model.browser_rows import STATUS_COLOURS

        colour = STATUS_COLOURS.get(status, "#777777")
        return f'<span style="color:{colour}; font-weight:600">● {status}</span>'

    def _update_buttons(self) -> None:
        status = self.run.status if self.run else None
        self.pause_button.setEnabled(status == RunStatus.RUNNING)
        self.stop_button.setEnabled(status in (RunStatus.RUNNING, RunStatus.PAUSED))
        self.resume_button.setEnabled(status in RESUMABLE | {RunStatus.PAUSED})
        self.resume_button.setToolTip(
            "Continue the paused run"
            if status == RunStatus.PAUSED
            else "Continue this run from its last checkpoint (same run, curves continue)"
        )
        self.export_button.setEnabled(self.run is not None)

    # -- drawing ----------------------------------------------------------------------------

    def _redraw(self) -> None:
        run = self.run
        if run is None:
            return
        dirty = run.take_dirty()
        self.plots.redraw(run, dirty, self.plots.smoothing.value() / 100)
        if "@stages" in dirty:
            self._show_reused(run.reused_spans())
            if self._veils:  # stage lines and their labels stay crisp over a veil
                for plot in self.plots.plots.values():
                    for item in plot.getPlotItem().items:
                        if isinstance(item, pg.InfiniteLine) and item.zValue() < VEIL_Z + 1:
                            item.setZValue(VEIL_Z + 1)
        if dirty & {"@stages", "@progress", "@status"} or not self.progress.rows:
            self.progress.show_progress(run)
        if "@confusion" in dirty:
            stage = run.stages.get(run.confusion.get("stage"))
            self.confusion.show_matrix(run.confusion, stage.name if stage else "")
        if "@ensemble" in dirty:
            self._show_ensembles(run)
        if "@gpu" in dirty:
            self._draw_gpu(run)
        events = run.take_new_events()
        if events:
            self.console.append_lines("\n".join(_log_line(e) for e in events))
            self._show_record_warning(events)
        if self.channel is not None:
            self.cursor_seen = max(self.cursor_seen, self.channel.cursor)

    def _show_reused(self, spans: list[tuple[float, float, str]]) -> None:
        """Veil the steps of reused stages: their curves are the source run's points,
        drawn faded; the stage's boundary label names the source ("reused from run 2")."""
        if spans == self.reused_spans:
            return
        self.reused_spans = spans
        for plot, veil in self._veils:
            plot.removeItem(veil)
        self._veils = []
        fade = QColor(self.palette().color(QPalette.ColorRole.Base))
        fade.setAlpha(150)
        for x0, x1, label in spans:
            for plot in self.plots.plots.values():
                veil = pg.LinearRegionItem(
                    values=(x0, x1), movable=False, brush=fade, pen=pg.mkPen(None)
                )
                veil.setZValue(VEIL_Z)  # over the curves (fading them), under the hover readout
                veil.setToolTip(label)
                plot.addItem(veil, ignoreBounds=True)
                self._veils.append((plot, veil))

    def _show_record_warning(self, events: list[dict]) -> None:
        # Problems of the record, and a model that starts partly untrained: both change how
        # the curves must be read, so they stay in view, not only in the log.
        titles = {"store": "Record", "model": "Model"}
        loud = [e for e in events if e.get("kind") in titles and e.get("level") != "info"]
        if loud:
            last = loud[-1]
            self.record_warning.setText(f"{titles[last['kind']]}: {last['message']}")
            self.record_warning.setToolTip(last["message"])
            self.record_warning.show()

    def _show_ensembles(self, run: RunSeries) -> None:
        reports = {
            (run.stages[i].name if i in run.stages else str(i)): data
            for i, data in sorted(run.ensembles.items())
        }
        first = not self.side.isTabVisible(3)
        self.ensemble.show_reports(reports)
        self.side.setTabVisible(3, bool(reports))
        if reports and first:
            self.side.setCurrentWidget(self.ensemble)

    def _draw_gpu(self, run: RunSeries) -> None:
        self.gpu_note.setText("")
        for index, per in run.gpu.items():
            name = f"{index}: {run.gpu_names.get(index, 'GPU')}"
            self.gpu_memory.set_curve(name, per["memory"].steps, per["memory"].values)
            self.gpu_load.set_curve(name, per["utilization"].steps, per["utilization"].values)

    # -- commands ---------------------------------------------------------------------------

    def _send(self, command: str) -> None:
        if self.channel is not None:
            self.channel.send(command)

    def _command_done(self, command: str, ok: bool, message: str) -> None:
        if not ok:
            self.console.append_lines(f"{command} was not done: {message}")

    def stop(self) -> None:
        """Stop the run after its current step, with a checkpoint (it can be resumed)."""
        self._send("stop")

    def resume(self) -> None:
        """A paused run continues at once; a stopped or interrupted one gets a new engine
        that continues the same run from its last checkpoint."""
        if self.run is None:
            return
        if self.run.status == RunStatus.PAUSED:
            self._send("resume")
        elif self.run.status in RESUMABLE:
            self.resumeRequested.emit(self.run.run_id)

    def resumed(self) -> None:
        """The window started the engine again: it is followed once it has claimed the run
        (the curves continue where they stopped)."""
        self.starting_until = time.monotonic() + 120
        self._set_status("starting")

    def close_run(self) -> None:
        """Stop showing the run (it goes on training)."""
        self.redraw_timer.stop()
        self.poll_timer.stop()
        self._stop_channel()
        self.run, self.loading = None, False
        self.cursor_seen, self.starting_until = 0, 0.0
        self._shown_status = None

    def _stop_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.message.disconnect()
            channel.ended.disconnect()
            channel.close()
            channel.deleteLater()


def planned_stages(info) -> list[tuple[str, str, int]]:
    """(name, kind, steps) of each stage of a run's recorded plan, its steps counted as the
    LR preview and `stagelab run` count them (`engine.spec.plan_steps`), so the run's total
    is known from the start."""
    from engine.spec.plan_steps import recorded_plan_steps

    return recorded_plan_steps(info.plan_text, info.plan_dir)


KIND_WIDTH = 11  # the longest event kind ("checkpoint", "truncated") and a space


def _log_line(event: dict, wall_s: float | None = None) -> str:
    """`time  kind  message` in columns (the log is drawn in a fixed-width font); the kind
    is left blank when the message starts with it ("checkpoint at step 100")."""
    wall = wall_s if wall_s is not None else (event.get("wall_ms") or 0) / 1000
    stamp = time.strftime("%H:%M:%S", time.localtime(wall))
    level = event.get("level") or "info"
    mark = "" if level == "info" else f"{level.upper()}: "
    kind, message = str(event.get("kind") or ""), str(event.get("message") or "")
    if message.lower().startswith(kind.lower()):
        kind = ""
    return f"{stamp}  {kind:<{KIND_WIDTH}} {mark}{message}"
