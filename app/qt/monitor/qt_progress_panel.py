"""Progress of a run: one bar per stage and one for the whole run, with speed and ETA."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QWidget

from app.model.formatting import duration
from app.model.run_series import StageState

STATUS_TEXT = {
    "pending": "waiting",
    "running": "training",
    "finished": "done",
    "reused": "reused from parent",
    "stopped": "stopped",
    "failed": "failed",
    "skipped": "skipped",
}


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

    def show_progress(
        self, stages: dict[int, StageState], progress: dict[str, Any], status: str
    ) -> None:
        for idx in sorted(stages):
            self._stage_row(stages[idx], progress if progress.get("stage") == idx else {}, status)
        total = progress.get("overall_total") or sum(s.total_steps or 0 for s in stages.values())
        done = progress.get("overall_step")
        if done is None:
            done = sum(s.steps_done for s in stages.values())
        self.overall.setRange(0, max(total, 1))
        self.overall.setValue(min(done, max(total, 1)))
        self.overall.setFormat(f"{done} / {total or '?'} steps")
        rate = progress.get("steps_per_s") if status == "running" else None
        speed = f"{rate:.1f} steps/s · " if rate else ""
        eta = f"ETA {duration(progress.get('overall_eta_s'))}" if rate else status
        self.overall_text.setText(speed + eta)

    def _stage_row(self, stage: StageState, progress: dict[str, Any], status: str) -> None:
        if stage.idx not in self.rows:
            row = len(self.rows) + 1
            name, bar, text = QLabel(), QProgressBar(), QLabel()
            bar.setObjectName(f"stageProgress{stage.idx}")
            bar.setAccessibleName(f"Progress of stage {stage.idx + 1}")
            bar.setMaximumHeight(16)
            self.grid.addWidget(name, row, 0)
            self.grid.addWidget(bar, row, 1)
            self.grid.addWidget(text, row, 2)
            self.rows[stage.idx] = (name, bar, text)
        name, bar, text = self.rows[stage.idx]
        name.setText(f"{stage.idx + 1}. {stage.name or '…'}")
        total = progress.get("total") or stage.total_steps or 0
        done = progress.get("step") if progress else stage.steps_done
        if stage.status in ("finished", "reused"):
            done = total = (
                max(stage.steps_done, total, 1)
                if stage.status == "reused"
                else max(stage.steps_done, 1)
            )
        bar.setRange(0, max(total, 1))
        bar.setValue(min(done or 0, max(total, 1)))
        bar.setFormat(f"{done or 0} / {total or '?'}")
        words = STATUS_TEXT.get(stage.status, stage.status)
        if progress.get("eta_s") is not None and status == "running":
            words += f" · ETA {duration(progress['eta_s'])}"
        text.setText(words)

    def clear(self) -> None:
        for widgets in self.rows.values():
            for widget in widgets:
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.rows.clear()
