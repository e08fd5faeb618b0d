"""Progress with ETA per stage and overall, from the records the channel sees, and the one
rule for a run's steps done and total (`run_done_and_total`) that the channel's `progress`
frames, `stagelab run`, `stagelab watch` and the window's monitor all count with."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from engine.channel.messages import Progress
from engine.store.status import RunStatus, StageStatus

RATE_WINDOW_S = 30.0
# Stages whose length is the steps they took (early stopping ends a stage short).
ENDED_STAGES = frozenset({StageStatus.FINISHED, StageStatus.REUSED, StageStatus.SKIPPED})


@dataclass(frozen=True)
class StageSteps:
    """What a reader knows of one stage's length.

    `total_steps` and `steps_done` are the engine's (the stage row, or newer live figures);
    `planned_steps` the plan's count (`engine.spec.plan_steps`), used until the engine
    knows the length (a stage that has not started)."""

    status: str | None = None
    total_steps: int | None = None
    steps_done: int | None = 0
    planned_steps: int | None = None


def with_progress(stage: StageSteps, progress: Progress | None) -> StageSteps:
    """The stage with the live figures of a `progress` message about it (None when the
    message is about another stage); an ended stage keeps its row's final figures."""
    if stage.status in ENDED_STAGES or progress is None:
        return stage
    return replace(
        stage,
        total_steps=progress.total or stage.total_steps,
        steps_done=progress.step if progress.step is not None else stage.steps_done,
    )


def stage_done_and_total(stage: StageSteps) -> tuple[int, int | None]:
    """Steps done and the stage's length (None while unknown). A finished or reused stage
    counts the steps it took, so a finished run's bar is full; a skipped one the steps it
    did."""
    if stage.status in ENDED_STAGES:
        if stage.status == StageStatus.SKIPPED:
            done = stage.steps_done or 0
        else:
            done = stage.steps_done or stage.total_steps or stage.planned_steps or 0
        return done, done
    return stage.steps_done or 0, stage.total_steps or stage.planned_steps


def run_done_and_total(stages: Iterable[StageSteps]) -> tuple[int, int | None]:
    """(steps done, total steps) of a whole run; the total is None while a stage's length
    is unknown (neither the engine nor the plan knows it)."""
    done, total = 0, 0
    for stage in stages:
        d, t = stage_done_and_total(stage)
        done += d
        total = None if total is None or t is None else total + t
    return done, total


class ProgressTracker:
    """Follows step counts and stage updates; `frame()` is the `progress` message."""

    def __init__(self) -> None:
        self.stages: dict[int, dict[str, Any]] = {}
        self.current: int | None = None
        self.step_now = 0
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def stage(self, update: dict[str, Any]) -> None:
        """A stage row changed (status, total_steps, steps_done …)."""
        idx = update["idx"]
        self.stages.setdefault(idx, {}).update({k: v for k, v in update.items() if k != "idx"})
        if update.get("status") == StageStatus.RUNNING and self.current != idx:
            self.current, self.step_now = idx, update.get("steps_done") or 0
            self._samples.clear()

    def step(self, stage: int, step: int) -> None:
        """A metric point of `stage` at `step` was recorded."""
        if stage != self.current:
            self.current, self.step_now = stage, 0
            self._samples.clear()
        if step > self.step_now:
            self.step_now = step
            now = time.monotonic()
            self._samples.append((now, step))
            while self._samples and now - self._samples[0][0] > RATE_WINDOW_S:
                self._samples.popleft()

    def rate(self) -> float | None:
        """Optimizer steps per second over the last half minute."""
        if len(self._samples) < 2:
            return None
        (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None

    def frame(self, status: str) -> dict[str, Any]:
        """The `progress` message: step, total and ETA of the stage and of the run."""
        rate = self.rate() if status == RunStatus.RUNNING else None
        info = self.stages.get(self.current, {}) if self.current is not None else {}
        total = info.get("total_steps")
        known = {**self.stages}
        if self.current is not None:  # points may come before the stage's first update
            known.setdefault(self.current, {})
        overall_step, overall_total = run_done_and_total(
            StageSteps(
                status=s.get("status"),
                total_steps=s.get("total_steps"),
                steps_done=self.step_now if i == self.current else s.get("steps_done"),
            )
            for i, s in sorted(known.items())
        )
        return {
            "type": "progress",
            "stage": self.current,
            "step": self.step_now,
            "total": total,
            "steps_per_s": rate,
            "eta_s": (total - self.step_now) / rate if rate and total else None,
            "overall_step": overall_step,
            "overall_total": overall_total,
            "overall_eta_s": (overall_total - overall_step) / rate
            if rate and overall_total
            else None,
        }


def stage_entries(rows: list[Any], progress: ProgressTracker) -> list[dict[str, Any]]:
    """The run's stages as the welcome and catch-up frames list them: the stored rows,
    overlaid with what the live progress knows newer."""
    by_idx = {s.idx: s for s in rows}
    out = []
    for idx in sorted(set(by_idx) | set(progress.stages)):
        row, live = by_idx.get(idx), progress.stages.get(idx, {})
        entry = {
            "idx": idx,
            "name": row.name if row else live.get("name"),
            "kind": row.kind if row else live.get("kind"),
            "status": row.status if row else None,
            "total_steps": row.total_steps if row else None,
            "steps_done": row.steps_done if row else 0,
        }
        entry.update({k: v for k, v in live.items() if k in entry and v is not None})
        out.append(entry)
    return out
