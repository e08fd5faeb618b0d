"""Metric points, the latest-value table, checkpoints and events."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store import series
from engine.store.db import Store
from engine.store.experiments import now_ms
from engine.store.models import SqlCheckpoint, SqlEvent, SqlLatestMetric, SqlStage
from engine.store.records import CheckpointInfo, EventInfo, MetricInfo

# stage_idx, key, step, value, wall_ms[, seq]: the stream position is optional (tests and
# imports write points without one; the engine's recorder numbers every point).
Point = tuple[int, str, int, float, int] | tuple[int, str, int, float, int, int]


def add_metrics(store: Store, run_id: str, points: Iterable[Point]) -> None:
    """Store a batch of points in one transaction and move the latest values on.

    Values may be NaN or ±inf (a diverging loss is a result, not an error). A point for a
    step already stored replaces it (a resumed run rewrites the steps after its
    checkpoint), so a series never holds a step twice.
    """
    grouped = series.group_points(points)
    if not grouped:
        return
    newest = [
        {
            "run_id": run_id,
            "stage_idx": stage,
            "key": key,
            "step": int(block.steps[-1]),
            "value": _sql_float(block.vals[-1]),
            "wall_ms": int(block.walls[-1]),
        }
        for (stage, key), block in grouped.items()
    ]
    with store.session(immediate=True) as s:
        for slot, block in grouped.items():
            series.append(s, run_id, slot, block)
        upsert = sqlite_insert(SqlLatestMetric)
        upsert = upsert.on_conflict_do_update(
            index_elements=["run_id", "stage_idx", "key"],
            set_={
                "step": upsert.excluded.step,
                "value": upsert.excluded.value,
                "wall_ms": upsert.excluded.wall_ms,
            },
            where=upsert.excluded.step >= SqlLatestMetric.step,
        )
        s.execute(upsert, newest)


def _sql_float(value: float) -> float | None:
    # SQLite turns NaN into NULL anyway; saying so keeps the meaning explicit.
    return None if math.isnan(value) else float(value)


def _py_float(value: float | None) -> float:
    return math.nan if value is None else value


def truncate_metrics_after(store: Store, run_id: str, stage_idx: int, step: int) -> None:
    """Delete points of `stage_idx` after `step` and of every later stage, then rebuild
    the latest values: what a resumed run will write again."""
    with store.session(immediate=True) as s:
        series.truncate_after(s, run_id, stage_idx, step)
        rebuild_latest(s, run_id)


def rebuild_latest(s: Session, run_id: str) -> None:
    """The latest-value table of the run from its series (after points were dropped), in
    the caller's transaction."""
    s.execute(delete(SqlLatestMetric).where(SqlLatestMetric.run_id == run_id))
    rows = [
        {
            "run_id": run_id,
            "stage_idx": stage,
            "key": key,
            "step": step,
            "value": _sql_float(value),
            "wall_ms": wall,
        }
        for (stage, key), (step, value, wall) in series.last_points(s, run_id).items()
    ]
    if rows:
        s.execute(insert(SqlLatestMetric), rows)


def latest_metrics(store: Store, run_id: str) -> list[MetricInfo]:
    """The newest point of every series of a run (NaN where it was NaN)."""
    with store.session() as s:
        rows = s.scalars(select(SqlLatestMetric).where(SqlLatestMetric.run_id == run_id))
        return [MetricInfo(r.stage_idx, r.key, r.step, _py_float(r.value), r.wall_ms) for r in rows]


def read_arrays(
    store: Store, run_id: str, key: str, stage_idx: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Steps (int64) and values (float64) of a series, ordered by stage then step."""
    with store.session() as s:
        blocks = [b for _, b in series.read_blocks(s, run_id, key, stage_idx, ("steps", "vals"))]
    if not blocks:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    joined = series.Block.concat(blocks)
    return joined.steps, joined.vals


def read_series(
    store: Store, run_id: str, key: str, stage_idx: int | None = None, max_points: int | None = None
) -> tuple[list[int], list[float]]:
    """Steps and values of a series, ordered by stage then step.

    With `max_points`, the series is cut into buckets and each keeps its minimum and its
    maximum, so a spike survives downsampling (never a sample that hides it).
    """
    steps, values = read_arrays(store, run_id, key, stage_idx)
    if max_points is None or len(steps) <= max_points:
        return steps.tolist(), values.tolist()
    return _peak_downsample(steps.tolist(), values.tolist(), max(max_points // 2, 1))


def _peak_downsample(
    steps: list[int], values: list[float], buckets: int
) -> tuple[list[int], list[float]]:
    size = -(-len(steps) // buckets)
    out_steps, out_values = [], []
    for start in range(0, len(steps), size):
        chunk = range(start, min(start + size, len(steps)))
        finite = [i for i in chunk if math.isfinite(values[i])] or list(chunk)
        lo = min(finite, key=values.__getitem__)
        hi = max(finite, key=values.__getitem__)
        odd = [i for i in chunk if not math.isfinite(values[i])][:1]  # a NaN/inf stays seen
        for i in sorted({lo, hi, *odd}):
            out_steps.append(steps[i])
            out_values.append(values[i])
    return out_steps, out_values


def export_metrics_rows(store: Store, run_id: str) -> list[tuple[str, int, str, float, int]]:
    """(stage name, step, key, value, wall_ms) of every point, by stage, key and step."""
    with store.session() as s:
        names = dict(
            s.execute(select(SqlStage.idx, SqlStage.name).where(SqlStage.run_id == run_id)).all()
        )
        out = []
        for (stage, key), b in series.read_series_blocks(s, run_id):
            if stage not in names:
                continue
            name = names[stage]
            out += [
                (name, st, key, v, w)
                for st, v, w in zip(
                    b.steps.tolist(), b.vals.tolist(), b.walls.tolist(), strict=True
                )
            ]
    return out


def add_checkpoint(store: Store, run_id: str, stage_idx: int, step: int, path: str) -> None:
    """Record a checkpoint folder (replacing a record of the same stage and step)."""
    with store.session(immediate=True) as s:
        s.execute(
            sqlite_insert(SqlCheckpoint).prefix_with("OR REPLACE"),
            [
                {
                    "run_id": run_id,
                    "stage_idx": stage_idx,
                    "step": step,
                    "path": path,
                    "created_ms": now_ms(),
                }
            ],
        )


def list_checkpoints(store: Store, run_id: str) -> list[CheckpointInfo]:
    """A run's checkpoints, oldest first."""
    with store.session() as s:
        rows = s.scalars(
            select(SqlCheckpoint)
            .where(SqlCheckpoint.run_id == run_id)
            .order_by(SqlCheckpoint.stage_idx, SqlCheckpoint.step)
        )
        return [CheckpointInfo(r.stage_idx, r.step, r.path, r.created_ms) for r in rows]


def latest_checkpoint(store: Store, run_id: str) -> CheckpointInfo | None:
    """The newest checkpoint (highest stage, then step) whose folder still exists."""
    from pathlib import Path

    for ckpt in reversed(list_checkpoints(store, run_id)):
        if Path(ckpt.path).exists():
            return ckpt
    return None


def add_events(store: Store, run_id: str, events: Iterable[dict[str, Any]]) -> None:
    """Store events: dicts with stage_idx, level, kind, message, data, wall_ms."""
    rows = [
        {
            "run_id": run_id,
            "stage_idx": e.get("stage_idx"),
            "level": e.get("level", "info"),
            "kind": e["kind"],
            "message": e["message"],
            "data": json.dumps(e["data"]) if e.get("data") is not None else None,
            "wall_ms": e.get("wall_ms") or now_ms(),
            "seq": e.get("seq"),
        }
        for e in events
    ]
    if rows:
        with store.session(immediate=True) as s:
            s.execute(insert(SqlEvent), rows)


def list_events(
    store: Store, run_id: str, kind: str | None = None, after_id: int = 0, limit: int | None = None
) -> list[EventInfo]:
    """A run's events in order, optionally of one kind and after an id."""
    with store.session() as s:
        query = select(SqlEvent).where(SqlEvent.run_id == run_id, SqlEvent.id > after_id)
        if kind is not None:
            query = query.where(SqlEvent.kind == kind)
        query = query.order_by(SqlEvent.id).limit(limit)
        return [
            EventInfo(
                r.id,
                r.stage_idx,
                r.wall_ms,
                r.level,
                r.kind,
                r.message,
                json.loads(r.data) if r.data else None,
            )
            for r in s.scalars(query)
        ]


def iter_points(store: Store, run_id: str) -> Iterator[tuple[int, str, int, float]]:
    """Every point of a run (stage_idx, key, step, value), by stage, key and step."""
    with store.session() as s:
        for (stage, key), b in series.read_series_blocks(s, run_id, fields=("steps", "vals")):
            for st, v in zip(b.steps.tolist(), b.vals.tolist(), strict=True):
                yield stage, key, st, v
