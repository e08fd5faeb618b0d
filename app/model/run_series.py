"""A run's curves and state as the monitor shows them, without Qt: series back-filled from
the store, then grown from channel messages. numpy arrays, so a million points per series
stay cheap to hold, append to and hand to the plot."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.channel.progress import (
    StageSteps,
    run_done_and_total,
    stage_done_and_total,
    with_progress,
)
from engine.store.status import RunStatus, StageStatus

CHUNK = 4096  # growth step of a series' arrays
ODD_NAMES = ((0.0, "NaN"), (1.0, "+inf"), (-1.0, "-inf"))


def _grown(array: np.ndarray, used: int, capacity: int) -> np.ndarray:
    out = np.empty(capacity, dtype=np.float64)
    out[:used] = array[:used]
    return out


class Series:
    """Steps and values of one metric in one stage, growing by appends (amortised O(1))."""

    def __init__(self) -> None:
        self._steps = np.empty(0, dtype=np.float64)
        self._values = np.empty(0, dtype=np.float64)
        self.size = 0
        self._owned = True  # False while holding arrays handed in (never written to)
        self.truncations = 0  # a reader holding points must re-read after a truncation

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.size]

    @property
    def values(self) -> np.ndarray:
        return self._values[: self.size]

    def extend(self, steps: Any, values: Any) -> None:
        steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
        if self.size == 0 and len(steps) >= CHUNK and steps.base is None and values.base is None:
            # A back-filled history arrives whole: keep its arrays (never written in place;
            # the next extend reallocates) instead of copying megabytes. Views are copied:
            # their owner may write to them.
            self._steps, self._values, self.size = steps, values, len(steps)
            self._owned = False
            return
        need = self.size + len(steps)
        if need > len(self._steps) or not self._owned:
            # np.resize would fill the new room by repeating the data: twice the work.
            capacity = max(need, 2 * len(self._steps), CHUNK)
            self._steps = _grown(self._steps, self.size, capacity)
            self._values = _grown(self._values, self.size, capacity)
            self._owned = True
        self._steps[self.size : need] = steps
        self._values[self.size : need] = values
        self.size = need

    def truncate_after(self, step: int) -> int:
        """Drop points after `step` (a resumed run retrains them); returns how many."""
        keep = int(np.searchsorted(self.steps, step, side="right"))
        dropped, self.size = self.size - keep, keep
        self.truncations += bool(dropped)
        return dropped


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

    def done_and_total(self, progress: dict[str, Any]) -> tuple[int, int | None]:
        """Steps done and the stage's length: the engine's count once it knows it, the
        plan's count before; a finished stage counts the steps it took (early stopping
        ends it short), so a finished run's bar is full. `progress` is the latest
        progress message when it is about this stage, else {}."""
        return stage_done_and_total(self.steps(progress))

    def steps(self, progress: dict[str, Any]) -> StageSteps:
        """The stage's length as the shared progress rule (`run_done_and_total`) takes it,
        the live figures of `progress` (about this stage, else {}) over the row's."""
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
    progress: dict[str, Any] = field(default_factory=dict)
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
            self.stages[idx].steps(self.progress if self.progress.get("stage") == idx else {})
            for idx in sorted(self.stages)
        )

    def update_stage(self, info: dict[str, Any]) -> None:
        """A stage row (the store's, with `reused_from`) or a live `stage` message (whose
        reuse comes as `reused_run_id` and `reused_stage_idx`)."""
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

    def add_gpu(self, samples: list[dict[str, Any]], wall_s: float) -> None:
        if self._gpu_t0 is None:
            self._gpu_t0 = wall_s
        for sample in samples:
            index = sample["index"]
            self.gpu_names[index] = sample.get("name", f"GPU {index}")
            per = self.gpu.setdefault(index, {"memory": Series(), "utilization": Series()})
            t = wall_s - self._gpu_t0
            per["memory"].extend([t], [sample["memory_used"] / 2**30])
            per["utilization"].extend([t], [sample["utilization"]])
        self.dirty.add("@gpu")

    def apply(self, message: dict[str, Any], wall_s: float = 0.0) -> None:
        """One channel message (see docs/protocol.md)."""
        kind = message.get("type")
        if kind == "metrics":
            self.add_points([(p[1], p[2], p[3], p[4]) for p in message["points"]])
        elif kind == "event":
            self.add_event(message)
        elif kind == "welcome":
            self.status = message["status"]
            for info in message.get("stages", []):
                self.update_stage(info)
        elif kind == "stage":
            self.update_stage(message)
        elif kind in ("status", "bye"):
            self.status = message["status"]
            self.dirty.add("@status")
        elif kind == "progress":
            self.progress = message
            self.dirty.add("@progress")
        elif kind == "gpu":
            self.add_gpu(message.get("gpus", []), wall_s)

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


class Curve:
    """One series drawn over the global step of the whole run: its x/y (and smoothed y)
    arrays kept between redraws and grown by the new points only, so a redraw of a live
    10-million-point curve costs what arrived since the last one, not the whole history.
    Between stages y holds a NaN so the line breaks at each boundary (x stays sorted, which
    keeps the plot's clip-to-view a binary search)."""

    def __init__(self, key: str, weight: float = 0.0, part: str = "all"):
        """`part`: "all" stages, only the stages this run "trained", or only the "reused"
        ones (compare draws those dashed)."""
        self.key, self.weight, self.part = key, weight, part
        self.raw, self.smooth = Series(), Series()  # steps: global x; values: y
        # Points whose value is NaN or ±inf: drawn as marked bands, never as a line. steps:
        # global x; values: their index in `raw` (runs of consecutive indices form a band).
        self.odd, self.odd_kind = Series(), Series()  # kind: 0 NaN, 1 +inf, -1 -inf
        # stage -> (points taken, the stage's offset, its series' truncation count)
        self.taken: dict[int, tuple[int, int, int]] = {}
        self._ema = (0.0, 0)  # EMA state and its step count in the current segment

    def _grows_at_end(self, run: RunSeries, per: dict[int, Series], weight: float) -> bool:
        """Whether the run only added points to the last stage drawn or added later stages
        (anything else, such as a truncation after resume, redraws the whole curve)."""
        known = sorted(self.taken)
        if weight != self.weight or known != sorted(per)[: len(known)]:
            return False
        for i in known:
            size, offset, truncations = self.taken[i]
            grown = per[i].size >= size if i == known[-1] else per[i].size == size
            if not grown or run.offset(i) != offset or per[i].truncations != truncations:
                return False
        return True

    def sync(self, run: RunSeries, weight: float) -> str:
        """Bring the arrays up to date with the run: "" if nothing changed, "grown" if
        points were only added at the end, else "rebuilt"."""
        per = {
            i: s
            for i, s in run.series.get(self.key, {}).items()
            if s.size and (self.part == "all" or run.is_reused(i) == (self.part == "reused"))
        }
        rebuilt = not self._grows_at_end(run, per, weight)
        if rebuilt:
            self.__init__(self.key, weight, self.part)
        changed = rebuilt
        for idx in sorted(per):
            series, offset = per[idx], run.offset(idx)
            done = self.taken.get(idx, (0,))[0]
            if done == series.size:
                continue
            x, y = series.steps[done:] + offset, series.values[done:]
            if done == 0 and self.raw.size:  # a new stage: break the line
                x, y = np.concatenate(([x[0]], x)), np.concatenate(([np.nan], y))
                y[1:] = self._take_odd(x[1:], y[1:], self.raw.size + 1)
            else:
                y = self._take_odd(x, y, self.raw.size)
            self.raw.extend(x, y)
            if self.weight > 0:
                smoothed, self._ema = ema(y, self.weight, *self._ema)
                self.smooth.extend(x, smoothed)
            self.taken[idx] = (series.size, offset, series.truncations)
            changed = True
        return "rebuilt" if rebuilt else "grown" if changed else ""

    def _take_odd(self, x: np.ndarray, y: np.ndarray, first: int) -> np.ndarray:
        """Note the non-finite values among new points; returns y with NaN in their place
        (the line breaks there, and ±inf would wreck the y range and the smoothing)."""
        odd = ~np.isfinite(y)
        if not odd.any():
            return y
        where = np.flatnonzero(odd)
        self.odd.extend(x[where], where + first)
        self.odd_kind.extend(x[where], np.where(np.isnan(y[where]), 0.0, np.sign(y[where])))
        return np.where(odd, np.nan, y)

    def odd_bands(self, limit: int = 100) -> list[tuple[float, float, str]]:
        """(first x, last x, label) of each run of consecutive non-finite points, e.g.
        (1200, 1500, "NaN") for a loss that diverged at step 1200; at most `limit` bands
        (the closest ones merged)."""
        if not self.odd.size:
            return []
        index = self.odd.values
        starts = np.flatnonzero(np.diff(index, prepend=-2) != 1)
        ends = np.append(starts[1:], len(index)) - 1
        if len(starts) > limit:  # keep the widest gaps between bands, merge the rest
            gaps = self.odd.steps[starts[1:]] - self.odd.steps[ends[:-1]]
            cut = np.sort(np.argsort(gaps)[-(limit - 1) :]) if limit > 1 else np.empty(0, int)
            starts = np.concatenate(([starts[0]], starts[1:][cut]))
            ends = np.append(ends[:-1][cut], ends[-1])
        bands = []
        kinds = self.odd_kind.values
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            seen = set(kinds[a : b + 1].tolist())
            label = "/".join(name for code, name in ODD_NAMES if code in seen)
            bands.append((float(self.odd.steps[a]), float(self.odd.steps[b]), label))
        return bands

    def arrays(self, smoothed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """x (global step) and y of the curve."""
        series = self.smooth if smoothed and self.weight > 0 else self.raw
        return series.steps, series.values


def ema(
    values: np.ndarray, weight: float, state: float = 0.0, count: int = 0
) -> tuple[np.ndarray, tuple[float, int]]:
    """Debiased exponential moving average (TensorBoard's smoothing), vectorised in blocks
    so a million points take milliseconds. A NaN (a stage boundary) restarts it. Continues
    from (state, count) and returns the state to continue from."""
    out = np.empty_like(values)
    gaps = np.flatnonzero(np.isnan(values))
    start = 0
    for end in [*gaps.tolist(), len(values)]:
        if end > start:
            out[start:end], state, count = _ema_segment(values[start:end], weight, state, count)
        if end < len(values):
            out[end] = np.nan
            state, count = 0.0, 0
        start = end + 1
    return out, (state, count)


def _ema_segment(
    x: np.ndarray, a: float, state: float, count: int
) -> tuple[np.ndarray, float, int]:
    # y_t = a*y_{t-1} + (1-a)*x_t, solved in closed form per block: a^-k stays below 1e150.
    block = max(1, min(len(x), int(150 * math.log(10) / -math.log(a))))
    raw = np.empty_like(x)
    for lo in range(0, len(x), block):
        chunk = x[lo : lo + block]
        powers = a ** np.arange(1, len(chunk) + 1, dtype=np.float64)
        raw[lo : lo + len(chunk)] = powers * (state + np.cumsum((1 - a) * chunk / powers))
        state = raw[lo + len(chunk) - 1]
    # Debias: the average starts from 0, so the t-th value is scaled by 1 - a^t.
    t = np.arange(count + 1, count + len(x) + 1, dtype=np.float64)
    return raw / (1 - a**t), float(state), count + len(x)
