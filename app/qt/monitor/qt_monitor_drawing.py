"""The run monitor's drawing (`MonitorDrawing`, mixed into `QtRunMonitor`): the timer's
redraw of what changed, the veils over reused stages, and the warning about the record
that stays above the curves."""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel

from app.qt.monitor.qt_run_log import log_line


def record_warning_label() -> QLabel:
    """Problems of the record itself (database writes failing, rows set aside): said
    above the curves, not only in the log, since they decide what the curves hold."""
    label = QLabel()
    label.setObjectName("recordWarning")
    label.setAccessibleName("Record warning")
    label.setWordWrap(True)
    label.setStyleSheet(
        "QLabel { background: #fde9e7; color: #7a1c12; border: 1px solid #d55e00;"
        " border-radius: 3px; padding: 4px 6px; }"
    )
    label.hide()
    return label


class MonitorDrawing:
    """The drawing half of the monitor (its attributes are the monitor's)."""

    # -- drawing ----------------------------------------------------------------------------

    def _redraw(self) -> None:
        run = self.run
        if run is None:
            return
        dirty = run.take_dirty()
        self.plots.redraw(run, dirty, self.plots.smoothing.value() / 100)
        if "@stages" in dirty:
            self._show_reused(self.plots.mapped_spans(run.reused_spans()))
            self.veils.raise_lines(self.plots.plots.values())
        if dirty & {"@stages", "@progress", "@status"} or not self.progress.rows:
            self.progress.show_progress(run)
        if "@confusion" in dirty:
            stage = run.stages.get(run.confusion.get("stage"))
            self.confusion.show_matrix(run.confusion, stage.name if stage else "")
        if "@ensemble" in dirty:
            self.side.show_ensembles(run)
        if "@gpu" in dirty:
            self.side.draw_gpu(run)
        self.side.samples.follow(run.events)  # reads only the events it has not seen
        events = run.take_new_events()
        if events:
            self.console.append_lines("\n".join(log_line(e) for e in events))
            self._show_record_warning(events)
        self.live.note_shown()

    def _show_reused(self, spans: list[tuple[float, float, str]]) -> None:
        """Veil the steps of reused stages: their curves are the source run's points,
        drawn faded; the stage's boundary label names the source ("reused from run 2")."""
        base = self.palette().color(QPalette.ColorRole.Base)
        self.veils.show_spans(spans, self.plots.plots.values(), base)

    @property
    def reused_spans(self) -> list[tuple[float, float, str]]:
        """(x0, x1, label) of the reused stages veiled."""
        return self.veils.spans

    @property
    def _veils(self) -> list:
        return self.veils.items

    @property
    def channel(self):
        """The live channel followed (None while not following)."""
        return self.live.channel

    def _show_record_warning(self, events: list[dict]) -> None:
        # Problems of the record, a model that starts partly untrained, steps with nothing to
        # learn from (gaps in train/loss): each changes how the curves must be read, so they
        # stay in view, not only in the log.
        titles = {"store": "Record", "model": "Model", "empty_step": "Training"}
        loud = [e for e in events if e.get("kind") in titles and e.get("level") != "info"]
        if loud:
            last = loud[-1]
            self.record_warning.setText(f"{titles[last['kind']]}: {last['message']}")
            self.record_warning.setToolTip(last["message"])
            self.record_warning.show()
