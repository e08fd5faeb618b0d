"""Progress with ETA per stage and overall, from the records the channel sees."""

from __future__ import annotations

import collections
import time
from typing import Any

RATE_WINDOW_S = 30.0


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
        if update.get("status") == "running" and self.current != idx:
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
        rate = self.rate() if status == "running" else None
        info = self.stages.get(self.current, {}) if self.current is not None else {}
        total = info.get("total_steps")
        done = sum(
            (s.get("steps_done") or 0)
            for i, s in self.stages.items()
            if i != self.current and s.get("status") in ("finished", "reused")
        )
        totals = [s.get("total_steps") for s in self.stages.values()]
        overall_total = sum(totals) if totals and all(t is not None for t in totals) else None
        for i, s in self.stages.items():  # a stage ended early counts with the steps it took
            if i != self.current and s.get("status") in ("finished", "reused") and overall_total:
                overall_total -= (s.get("total_steps") or 0) - (s.get("steps_done") or 0)
        overall_step = done + self.step_now
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
