"""Progress of a run: one bar per stage and one for the whole run, with speed and ETA."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget

from app.model.browser_rows import STARTING
from app.model.formatting import duration
from app.model.model_size import stage_size_text
from app.model.run_series import RunSeries, StageState
from engine.channel.messages import Progress
from engine.store.status import STAGE_DONE, RunStatus, StageStatus

STATUS_TEXT = {
    StageStatus.PENDING: "waiting",
    StageStatus.RUNNING: "training",
    StageStatus.FINISHED: "done",
    StageStatus.REUSED: "reused from parent",
    StageStatus.STOPPED: "stopped",
    StageStatus.FAILED: "failed",
    StageStatus.SKIPPED: "skipped",
}

RUN_STATUS_TEXT = {RunStatus.RUNNING: "training", STARTING: "starting…"}
# A running stage of a run held or ending says so (a paused run's stage is not training).
HELD_TEXT = {RunStatus.PAUSED: "paused", RunStatus.STOPPING: "stopping…", STARTING: "starting…"}
ENDED_EARLY = (RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED)


def stage_words(stage_status: str, run_status: str) -> str:
    """What a stage row says: its own status, unless the run's explains it better (a
    paused run's current stage is paused, not training)."""
    if stage_status == StageStatus.RUNNING and run_status in HELD_TEXT:
        return HELD_TEXT[run_status]
    if stage_status == StageStatus.RUNNING and run_status in ENDED_EARLY:
        return run_status
    return STATUS_TEXT.get(stage_status, stage_status)


class QtProgressPanel(QWidget):
    """Stage bars and the overall bar; `show_progress` takes the run's stages and the
    latest `progress` message."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("progressPanel")
        self.setAccessibleName("Progress")
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(4, 4, 4, 4)
        self.grid.setHorizontalSpacing(10)
        self.grid.setVerticalSpacing(2)
        self.overall = QProgressBar()
        self.overall.setObjectName("overallProgress")
        self.overall.setAccessibleName("Overall progress")
        self.overall_text = QLabel()
        self.grid.addWidget(QLabel("<b>Run</b>"), 0, 0)
        self.grid.addWidget(self.overall, 0, 1)
        self.grid.addWidget(self.overall_text, 0, 2)
        self.grid.setColumnStretch(1, 1)
        self.rows: dict[int, tuple[QLabel, QProgressBar, QLabel]] = {}

    def show_progress(self, run: RunSeries) -> None:
        """Show the run's stages and totals (`RunSeries.overall`, not the engine's
        overall count, which leaves out the stages it has not reached)."""
        for idx in sorted(run.stages):
            progress = run.progress_of(idx)
            self._stage_row(run.stages[idx], progress, run.status, stage_size_text(run, idx))
        done, total = run.overall()
        self.overall.setRange(0, max(total or 0, 1))
        self.overall.setValue(min(done, max(total or 0, 1)))
        self.overall.setFormat(f"{done:,} / {total:,} steps" if total else f"{done:,} / ? steps")
        rate = run.progress.steps_per_s if run.status == RunStatus.RUNNING else None
        if rate and total:
            speed = f"{rate:.1f} steps/s · "
            eta = f"ETA {duration((total - done) / rate)}"
        else:
            speed, eta = "", RUN_STATUS_TEXT.get(run.status, run.status)
        self.overall_text.setText(speed + eta)

    def _stage_row(
        self, stage: StageState, progress: Progress | None, status: str, size: str = ""
    ) -> None:
        if stage.idx not in self.rows:
            row = len(self.rows) + 1
            name, bar, text = QLabel(), QProgressBar(), QLabel()
            name.setMinimumWidth(60)
            bar.setObjectName(f"stageProgress{stage.idx}")
            bar.setAccessibleName(f"Progress of stage {stage.idx + 1}")
            bar.setMaximumHeight(16)
            bar.setMinimumWidth(80)
            self.grid.addWidget(name, row, 0)
            self.grid.addWidget(bar, row, 1)
            self.grid.addWidget(text, row, 2)
            self.rows[stage.idx] = (name, bar, text)
        name, bar, text = self.rows[stage.idx]
        name.setText(f"{stage.idx + 1}. {stage.name or '…'}")
        done, total = stage.done_and_total(progress)
        if stage.kind in ("ensemble", "merge"):  # evaluation only: no steps to count
            finished = stage.status in STAGE_DONE
            bar.setRange(0, 1)
            bar.setValue(int(finished))
            bar.setFormat("evaluated" if finished else "evaluation only")
        else:
            bar.setRange(0, max(total or 0, 1))
            bar.setValue(min(done, max(total or 0, 1)))
            bar.setFormat(f"{done:,} / {total:,}" if total else f"{done:,} / ?")
        words = stage_words(stage.status, status)
        if stage.status == StageStatus.REUSED and stage.reused_label:
            words = stage.reused_label  # "reused from run 2": which run trained it
        if progress is not None and progress.eta_s is not None and status == RunStatus.RUNNING:
            words += f" · ETA {duration(progress.eta_s)}"
        if size:  # the model before/after a grow, student and teacher of a distillation
            words += f" · {size}"
        text.setText(words)

    def clear(self) -> None:
        for widgets in self.rows.values():
            for widget in widgets:
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.rows.clear()
