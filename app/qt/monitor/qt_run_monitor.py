"""The run monitor: one run's progress, curves, latest confusion matrix, GPU graphs and log,
with pause / resume / stop and exports.

Opening a run back-fills its curves from the store on a worker thread (the event loop
never waits on SQLite), then follows the engine's channel from the stored position, so a
reopened window shows the complete history and then goes live. Curves are redrawn from a
timer (10 Hz), never per message."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from app.model.browser_rows import STARTING
from app.model.run_series import RunSeries
from app.qt.monitor.qt_history_loader import HistoryLoader
from app.qt.monitor.qt_live_follow import QtLiveFollow
from app.qt.monitor.qt_monitor_drawing import MonitorDrawing, record_warning_label
from app.qt.monitor.qt_monitor_side import QtMonitorSide
from app.qt.monitor.qt_progress_panel import QtProgressPanel
from app.qt.monitor.qt_reused_veils import ReusedVeils
from app.qt.monitor.qt_run_log import log_line, status_note
from app.qt.monitor.qt_run_plots import QtRunPlots
from app.qt.qt_elided_label import QtElidedLabel
from engine.channel.messages import (
    Bye,
    ErrorReport,
    ServerMessage,
    StageUpdate,
    Status,
    Welcome,
)
from engine.store.status import LIVE, NOT_ENDED, RESUMABLE, RunStatus, StageStatus

REDRAW_MS = 100
POLL_MS = 2000  # how often the store is asked whether a silent engine is still alive


class QtRunMonitor(MonitorDrawing, QWidget):
    """Shows one run at a time (`open_run`)."""

    statusChanged = Signal(str, str)  # run id, status
    resumeRequested = Signal(str)  # run id: the window restarts its engine
    fetchRequested = Signal(str)  # run id: the window fetches its outputs from its target

    def __init__(self, store_factory, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runMonitor")
        self.setAccessibleName("Run monitor")
        self.store = store_factory
        self.run: RunSeries | None = None
        self.info = None
        self.live = QtLiveFollow(store_factory, self._message, self)
        self.live.ended.connect(self._poll)
        self.loading = False
        self.history_s: float | None = None
        self.starting_until = 0.0  # a (re)started engine has until then to claim the run
        self.claims_before = 0  # the run's resume count before that engine started
        self.reused_asked: set[int] = set()  # reused stages whose source points were read
        self.veils = ReusedVeils()  # over reused stages' steps

        self.title = QtElidedLabel("No run open. Press Run, or open a run from Experiments.")
        self.title.setObjectName("runTitle")
        self.badge = QLabel()
        self.badge.setObjectName("runStatus")
        self.pause_button = self._button("Pause", "pauseButton", lambda: self.live.send("pause"))
        self.resume_button = self._button("Resume", "resumeButton", self.resume)
        self.stop_button = self._button("Stop", "stopButton", self.stop)
        from app.qt.monitor.qt_remote_parts import RemoteParts
        from app.qt.monitor.qt_run_exports import export_menu

        self.remote = RemoteParts(self)  # where a remote run trains, its Slurm script
        self.export_button = self._button("Export", "exportButton", None)
        self.export_button.setMenu(export_menu(self))
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.badge)
        header.addWidget(self.remote.script_button)
        for button in (self.pause_button, self.resume_button, self.stop_button, self.export_button):
            header.addWidget(button)

        self.progress = QtProgressPanel()
        self.plots = QtRunPlots()
        self.plots.smoothingChanged.connect(lambda _: self._redraw())
        self.plots.layoutChanged.connect(self._save_layout)
        self.side = QtMonitorSide()
        side = self.side  # its parts, as the monitor's tests and exports name them
        self.confusion, self.ensemble, self.console = side.confusion, side.ensemble, side.console
        self.gpu_memory, self.gpu_load = side.gpu_memory, side.gpu_load
        self.live.commandFailed.connect(self.console.append_lines)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(self.plots)
        split.addWidget(self.side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([1000, 380])
        self.record_warning = record_warning_label()
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
        self.loader.clock.connect(
            lambda stage, steps, walls: self.run and self.run.add_clock(stage, steps, walls)
        )
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
        self._show_title()
        self.progress.clear()
        self.plots.clear()
        self._show_layout(())
        self.side.clear_run(on_gpu=self.info.gpus not in ("", "cpu"))
        self.record_warning.hide()
        self.loading, self._opened_at = True, time.perf_counter()
        self.badge.setText(self._badge_text("loading history…"))
        self.loader.load(store, run_id)
        self.redraw_timer.start()
        self.poll_timer.start()
        self._redraw()

    def _show_title(self) -> None:
        from app.qt.monitor.qt_remote_parts import where_text

        info = self.info
        self.title.setText(
            f"{self.experiment.name} · run {info.number} · {info.id}{where_text(info)}"
        )
        self.remote.show_run(info)

    def _history_header(self, run_id: str, planned: list, stages: list, events: list) -> None:
        if self.run is not None and self.loading and run_id == self.run.run_id:
            self._show_layout([kind for _, kind, _ in planned])
            self.run.plan_stages(planned)
            for stage in stages:
                self.run.update_stage(stage)
            for event in events:
                self.run.add_event(event, live=False)

    def _workspace(self):
        path = getattr(self.store(), "path", None)  # the workspace's stagelab.db
        return path.parent if path is not None else None

    def _show_layout(self, kinds) -> None:
        """The experiment's saved panels, else the default for its plan's stage kinds."""
        from app.model.panels import default_layout, saved_layout

        self.plots.default_panels = default_layout(kinds)
        chosen = saved_layout(self._workspace(), self.experiment.name)
        chosen = chosen or default_layout(kinds)
        if chosen.to_dict() != self.plots.panel_layout.to_dict():
            self.plots.set_panel_layout(chosen, save=False)

    def _save_layout(self, chosen) -> None:
        """A view changed: kept for the experiment in the workspace, not in its plan."""
        from app.model.panels import save_layout

        root = self._workspace()
        if root is not None and self.info is not None:
            try:
                save_layout(root, self.experiment.name, chosen)
            except OSError as exc:
                self.console.append_lines(f"Could not keep the panels: {exc}")

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
        self.live.cursor_seen = upto
        self.history_s = time.perf_counter() - self._opened_at
        self._set_status(self.run.status)
        self._redraw()
        if self.run.status in NOT_ENDED:
            self._follow(upto)

    def _follow(self, after: int) -> None:
        from engine.remote.mirror_process import attach

        attach(self.info)  # a run on a target: its mirror, started when none runs
        self.live.follow(self.info.run_dir, after)

    def _message(self, message: ServerMessage) -> None:
        if self.run is None:
            return
        self.run.apply(message, wall_s=time.time())
        if isinstance(message, StageUpdate | Welcome) and not self.loading:
            self._load_new_reused()
        if isinstance(message, Status | Bye | Welcome):
            self._set_status(self.run.status)
        elif isinstance(message, ErrorReport):
            self.console.append_lines(f"channel: {message.message}")

    def _poll(self) -> None:
        """Ask the store for the run's status (a crashed engine shows `interrupted`) and
        follow the channel again when the run is live but not followed (engine starting)."""
        if self.run is None or self.loading:
            return
        from engine.store import queries

        info = queries.get_run(self.store(), self.run.run_id)
        self.info = info
        if self.remote.ended_unseen(info, self.run.status, self.live):
            self.open_run(info.id)  # its stored record, whole
            return
        self._load_new_reused()  # a reuse whose row was not yet written when it was said
        starting = time.monotonic() < self.starting_until
        if starting and info.resume_count > self.claims_before and info.status not in NOT_ENDED:
            # The new engine claimed the run and ended it between two polls (a short rest of
            # a run, or a failure at once): its whole record now, not "starting" until the
            # claim's wait runs out.
            self.open_run(info.id)
            return
        if info.status in LIVE:
            self.starting_until = 0.0
            if self.live.channel is None:
                self._follow(self.live.resume_point(self.run.run_id))
        elif starting:
            return  # the new engine has not claimed the run yet
        if self.live.channel is None or info.status not in NOT_ENDED:
            self._set_status(info.status)
        if info.target:  # the host, the Slurm job and its reason arrive as it goes
            self._show_title()
            self.badge.setText(self._badge_text(self.run.status))

    def _set_status(self, status: str) -> None:
        if self.run is None:
            return
        before = getattr(self, "_shown_status", None)
        changed = status != before
        note = status_note(before, status)  # pause / resume are in no stored event
        if note:
            self.console.append_lines(log_line({"kind": "status", "message": note}, time.time()))
        self.run.status = status
        self.run.dirty.add("@status")  # the progress words follow the badge
        self._shown_status = status
        self.badge.setText(self._badge_text(status))
        self._update_buttons()
        if changed:
            self.statusChanged.emit(self.run.run_id, status)

    def _badge_text(self, status: str) -> str:
        from app.model.browser_rows import STATUS_COLOURS
        from app.qt.monitor.qt_remote_parts import queued_reason

        colour = STATUS_COLOURS.get(status, "#777777")
        reason = queued_reason(self.info, status)
        why = f' <span style="color:#555">· {reason}</span>' if reason else ""
        return f'<span style="color:{colour}; font-weight:600">● {status}</span>{why}'

    def _update_buttons(self) -> None:
        status = self.run.status if self.run else None
        self.pause_button.setEnabled(status == RunStatus.RUNNING)
        cancel = self.remote.can_cancel(status)  # a queued Slurm run: Stop cancels its job
        self.stop_button.setEnabled(status in (RunStatus.RUNNING, RunStatus.PAUSED) or cancel)
        self.stop_button.setToolTip(self.remote.STOP_TIPS[cancel])
        self.resume_button.setEnabled(status in RESUMABLE | {RunStatus.PAUSED})
        self.resume_button.setToolTip(
            "Continue the paused run"
            if status == RunStatus.PAUSED
            else "Continue this run from its last checkpoint (same run, curves continue)"
        )
        self.export_button.setEnabled(self.run is not None)

    # -- commands ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the run after its current step, with a checkpoint (it can be resumed); a
        queued Slurm run's job is cancelled."""
        if self.run is not None and self.remote.can_cancel(self.run.status):
            self.remote.cancel_job(lambda: (self._update_buttons(), self._poll()))
            return
        self.live.send("stop")

    def resume(self) -> None:
        """A paused run continues at once; a stopped or interrupted one gets a new engine
        that continues the same run from its last checkpoint."""
        if self.run is None:
            return
        if self.run.status == RunStatus.PAUSED:
            self.live.send("resume")
        elif self.run.status in RESUMABLE:
            self.resumeRequested.emit(self.run.run_id)

    def resumed(self, claims_before: int | None = None) -> None:
        """The window started the engine again: it is followed once it has claimed the run
        (the curves continue where they stopped). `claims_before`: the run's resume count
        before the engine started (the new engine's claim raises it)."""
        if claims_before is None:
            claims_before = self.info.resume_count if self.info is not None else 0
        self.claims_before = claims_before
        self.starting_until = time.monotonic() + 120
        self._set_status(STARTING)

    def close_run(self) -> None:
        """Stop showing the run (it goes on training)."""
        self.redraw_timer.stop()
        self.poll_timer.stop()
        self.live.stop()
        self.run, self.loading = None, False
        self.live.cursor_seen, self.starting_until = 0, 0.0
        self._shown_status = None
