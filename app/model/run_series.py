"""A run's curves and state as the monitor shows them, without Qt: series back-filled from
the store, then grown from channel messages. numpy arrays (`series.py`), so a million
points per series stay cheap to hold, append to and hand to the plot; `curve.py` draws a
series over the whole run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.model.series import Series
from engine.channel.messages import (
    Bye,
    Event,
    Gpu,
    GpuSample,
    Metrics,
    Progress,
    ServerMessage,
    StageUpdate,
    Status,
    Welcome,
)
from engine.channel.progress import (
    StageSteps,
    run_done_and_total,
    stage_done_and_total,
    with_progress,
)
from engine.store.status import RunStatus, StageStatus


@dataclass
class StageState:
    """What the monitor knows of a stage."""

    idx: int
    name: str = ""
    kind: str = ""
    status: str = StageStatus.PENDING
    total_steps: int | None = None
    steps_done: int = 0
    global_step_start: int | None = None
    planned_steps: int | None = None  # counted from the plan as the LR preview counts
    # A stage the stage cache reused: {"run": id, "stage": index} of the stage that trained
    # it, and how the monitor names that source ("reused from run 2").
    reused_from: dict[str, Any] | None = None
    reused_label: str = ""

    def done_and_total(self, progress: Progress | None) -> tuple[int, int | None]:
        """Steps done and the stage's length: the engine's count once it knows it, the
        plan's count before; a finished stage counts the steps it took (early stopping
        ends it short), so a finished run's bar is full. `progress` is the latest
        progress message when it is about this stage, else None."""
        return stage_done_and_total(self.steps(progress))

    def steps(self, progress: Progress | None) -> StageSteps:
        """The stage's length as the shared progress rule (`run_done_and_total`) takes it,
        the live figures of `progress` (about this stage, else None) over the row's."""
        row = StageSteps(self.status, self.total_steps, self.steps_done, self.planned_steps)
        return with_progress(row, progress)


@dataclass
class RunSeries:
    """Everything the monitor draws for one run."""

    run_id: str
    status: str = RunStatus.QUEUED
    stages: dict[int, StageState] = field(default_factory=dict)
    series: dict[str, dict[int, Series]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    confusion: dict[str, Any] | None = None  # {"matrix", "labels", "stage", "step", "member"}
    # An ensemble stage's side-by-side report (its `ensemble` event's data), by stage.
    ensembles: dict[int, dict[str, Any]] = field(default_factory=dict)
    gpu: dict[int, dict[str, Series]] = field(default_factory=dict)
    gpu_names: dict[int, str] = field(default_factory=dict)
    # Wall time (s) at each stage step seen, by stage: the x axis by wall time.
    clock: dict[int, Series] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)  # the latest one
    dirty: set[str] = field(default_factory=set)  # series changed since the last redraw
    new_events: list[dict[str, Any]] = field(default_factory=list)
    last_event_seq: int = 0
    _gpu_t0: float | None = None

    # -- filling ----------------------------------------------------------------------------

    def stage(self, idx: int) -> StageState:
        return self.stages.setdefault(idx, StageState(idx))

    def plan_stages(self, planned: list[tuple[str, str, int]]) -> None:
        """(name, kind, steps) of every stage of the run's plan, counted as the LR preview
        counts them: bars and the run's total are right before a stage has started."""
        for idx, (name, kind, steps) in enumerate(planned):
            state = self.stage(idx)
            state.name = state.name or name
            state.kind = state.kind or kind
            state.planned_steps = steps
        self.dirty.add("@stages")

    def overall(self) -> tuple[int, int | None]:
        """(steps done, total steps) of the whole run; total is None while a stage's length
        is unknown."""
        return run_done_and_total(
            self.stages[idx].steps(self.progress_of(idx)) for idx in sorted(self.stages)
        )

    def progress_of(self, idx: int) -> Progress | None:
        """The latest progress message if it is about stage `idx`."""
        return self.progress if self.progress.stage == idx else None

    def update_stage(self, info: dict[str, Any] | StageUpdate) -> None:
        """A stage row (the store's, with `reused_from`) or a live `stage` message (whose
        reuse comes as `reused_run_id` and `reused_stage_idx`)."""
        if isinstance(info, StageUpdate):
            info = {k: v for k, v in info.__dict__.items() if v is not None}
        state = self.stage(info["idx"])
        for name in ("name", "kind", "status", "total_steps", "steps_done", "global_step_start"):
            if info.get(name) is not None:
                setattr(state, name, info[name])
        if info.get("reused_from"):
            state.reused_from = dict(info["reused_from"])
        elif info.get("reused_run_id") is not None:
            state.reused_from = {"run": info["reused_run_id"], "stage": info["reused_stage_idx"]}
        self.dirty.add("@stages")

    def reused_sources(self) -> dict[int, tuple[str, int]]:
        """Reused stages and the (run, stage) that trained each: their curves are that
        stage's points, read from the store (`read_reused`)."""
        return {
            idx: (s.reused_from["run"], int(s.reused_from["stage"]))
            for idx, s in self.stages.items()
            if s.status == StageStatus.REUSED and s.reused_from and s.reused_from.get("run")
        }

    def add_reused(self, idx: int, label: str, series: list[tuple[str, Any, Any]]) -> None:
        """The source's points of reused stage `idx`, drawn as that stage's, and how the
        source is named ("reused from run 2")."""
        self.stage(idx).reused_label = label
        self.dirty.add("@stages")
        for key, steps, values in series:
            self.add_series(key, idx, steps, values)

    def reused_spans(self) -> list[tuple[float, float, str]]:
        """(first global step, last global step, label) of each reused stage: the x-range
        the monitor marks as not trained by this run."""
        spans = []
        for idx in sorted(self.reused_sources()):
            state = self.stages[idx]
            start = self.offset(idx)
            end = start + max(state.steps_done or 0, int(self._last_step(idx)), 1)
            spans.append((float(start), float(end), state.reused_label or "reused"))
        return spans

    def add_points(self, points: list[tuple[int, str, int, float]]) -> None:
        """(stage, key, step, value) points in stream order."""
        batch: dict[tuple[str, int], tuple[list[int], list[float]]] = {}
        for stage, key, step, value in points:
            steps, values = batch.setdefault((key, stage), ([], []))
            steps.append(step)
            values.append(value)
        for (key, stage), (steps, values) in batch.items():
            self.add_series(key, stage, steps, values)

    def add_series(self, key: str, stage: int, steps: Any, values: Any) -> None:
        """Points of one series; steps it already holds are ignored, so a stream that is
        re-read from an earlier position never draws a point twice."""
        series = self.series.setdefault(key, {}).setdefault(stage, Series())
        steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
        if series.size and len(steps) and steps[0] <= series.steps[-1]:
            keep = steps > series.steps[-1]
            steps, values = steps[keep], values[keep]
        if len(steps):
            series.extend(steps, values)
            self.dirty.add(key)

    def add_clock(self, stage: int, steps: Any, walls_s: Any) -> None:
        """When (epoch seconds) steps of a stage were recorded; steps not after the last
        one held are ignored."""
        clock = self.clock.setdefault(stage, Series())
        steps, walls = np.asarray(steps, np.float64), np.asarray(walls_s, np.float64)
        keep = steps > (clock.steps[-1] if clock.size else -np.inf)
        if keep.any():
            clock.extend(steps[keep], walls[keep])
            self.dirty.add("@clock")

    def add_event(self, event: dict[str, Any], live: bool = True) -> None:
        """An event; a live `truncated` one drops the points the resumed engine retrains
        (stored history has them dropped already)."""
        seq = event.get("seq")
        if seq is not None:
            if seq <= self.last_event_seq:
                return  # re-read from an earlier stream position
            self.last_event_seq = seq
        self.events.append(event)
        self.new_events.append(event)
        data = event.get("data") or {}
        if live and event.get("kind") == "truncated":
            self.truncate(data["stage"], data["after_step"])
        if event.get("kind") == "ensemble" and event.get("stage") is not None:
            self.ensembles[event["stage"]] = data
            self.dirty.add("@ensemble")
        if "confusion_matrix" in data:
            self.confusion = {
                "matrix": data["confusion_matrix"],
                "labels": data.get("labels"),
                "stage": event.get("stage"),
                "step": data.get("step"),
                "member": data.get("member"),  # a joint stage's member
            }
            self.dirty.add("@confusion")

    def truncate(self, stage: int, after_step: int) -> None:
        """A resumed engine retrains the steps after its checkpoint: forget them here too,
        so the curve continues without duplicates."""
        for key, stages in self.series.items():
            if stage in stages and stages[stage].truncate_after(after_step):
                self.dirty.add(key)

    def add_gpu(self, samples: tuple[GpuSample, ...], wall_s: float) -> None:
        if self._gpu_t0 is None:
            self._gpu_t0 = wall_s
        for sample in samples:
            self.gpu_names[sample.index] = sample.name
            per = self.gpu.setdefault(sample.index, {"memory": Series(), "utilization": Series()})
            t = wall_s - self._gpu_t0
            per["memory"].extend([t], [sample.memory_used / 2**30])
            per["utilization"].extend([t], [sample.utilization])
        self.dirty.add("@gpu")

    def apply(self, message: ServerMessage, wall_s: float = 0.0) -> None:
        """One channel message, typed at the client (`engine.channel.messages`)."""
        if isinstance(message, Metrics):
            self.add_points([(p.stage, p.key, p.step, p.value) for p in message.points])
            for p in message.points:
                self.add_clock(p.stage, [p.step], [p.wall_ms / 1000])
        elif isinstance(message, Event):
            self.add_event(message.record())
        elif isinstance(message, Welcome):
            self.status = message.status
            for info in message.stages:
                self.update_stage({k: v for k, v in info.__dict__.items() if v is not None})
        elif isinstance(message, StageUpdate):
            self.update_stage(message)
        elif isinstance(message, Status | Bye):
            self.status = message.status
            self.dirty.add("@status")
        elif isinstance(message, Progress):
            self.progress = message
            self.dirty.add("@progress")
        elif isinstance(message, Gpu):
            self.add_gpu(message.gpus, wall_s)

    # -- reading ----------------------------------------------------------------------------

    def offset(self, stage: int) -> int:
        """Global step at which a stage starts (from the stage rows, else the sum of the
        earlier stages' steps)."""
        state = self.stages.get(stage)
        if state is not None and state.global_step_start is not None:
            return state.global_step_start
        return sum(
            max(s.steps_done, int(self._last_step(s.idx)))
            for s in self.stages.values()
            if s.idx < stage
        )

    def _last_step(self, stage: int) -> float:
        last = [s[stage].steps[-1] for s in self.series.values() if stage in s and s[stage].size]
        return max(last, default=0)

    def is_reused(self, stage: int) -> bool:
        state = self.stages.get(stage)
        return state is not None and state.status == StageStatus.REUSED

    def stage_xy(self, key: str, stage: int) -> tuple[np.ndarray, np.ndarray]:
        """One stage of a series by the stage's own step (the whole run: `Curve`)."""
        series = self.series.get(key, {}).get(stage)
        if series is None:
            return np.empty(0), np.empty(0)
        return series.steps, series.values

    def point_count(self, key: str) -> int:
        return sum(s.size for s in self.series.get(key, {}).values())

    def boundaries(self) -> list[tuple[float, str]]:
        """(global step, stage name) where each stage that has started begins; a reused
        stage's name says so ("mlm (reused from run 1)")."""
        out = []
        for idx in sorted(self.stages):
            state = self.stages[idx]
            if state.status in (StageStatus.PENDING, None) and not any(
                idx in s for s in self.series.values()
            ):
                continue
            name = state.name or f"stage {idx}"
            if state.status == StageStatus.REUSED:
                name += f" ({state.reused_label or 'reused'})"
            out.append((float(self.offset(idx)), name))
        return out

    def keys(self) -> list[str]:
        return sorted(k for k, v in self.series.items() if any(s.size for s in v.values()))

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def take_new_events(self) -> list[dict[str, Any]]:
        events, self.new_events = self.new_events, []
        return events


def read_reused(
    store: Any, experiment_id: str, sources: dict[int, tuple[str, int]]
) -> Iterator[tuple[int, str, list[tuple[str, np.ndarray, np.ndarray]]]]:
    """For each reused stage (`RunSeries.reused_sources`): its index, how its source is
    named ("reused from run 2", "reused from run 1 of tiny" when the source is another
    experiment's) and the source stage's series (key, steps, values). A source run that
    was deleted has no points left; its label says so. Reads the store: call it off the
    GUI thread."""
    from engine.store import queries
    from engine.store.browse import read_stage_history

    for idx, (source_run, source_stage) in sorted(sources.items()):
        try:
            info = queries.get_run(store, source_run)
        except queries.NotFound:
            yield idx, f"reused from run {source_run[:6]}, since deleted", []
            continue
        label = f"reused from run {info.number}"
        if info.experiment_id != experiment_id:
            label += f" of {queries.get_experiment(store, info.experiment_id).name}"
        points = [
            (key, steps.astype(np.float64), values)
            for key, steps, values in read_stage_history(store, source_run, source_stage)
        ]
        yield idx, label, points
