"""Metric points, the latest-value table, checkpoints and events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.store.db import Store
from engine.store.experiments import now_ms
from engine.store.models import SqlCheckpoint, SqlEvent, SqlLatestMetric, SqlMetric, SqlStage
from engine.store.records import CheckpointInfo, EventInfo, MetricInfo

# stage_idx, key, step, value, wall_ms[, seq]: the stream position is optional (tests and
# imports write points without one; the engine's recorder numbers every point).
Point = tuple[int, str, int, float, int] | tuple[int, str, int, float, int, int]


def add_metrics(store: Store, run_id: str, points: Iterable[Point]) -> None:
    """Store a batch of points in one transaction and move the latest values on.

    A point for a step already stored replaces it (a resumed run rewrites the steps after
    its checkpoint), so a series never holds a step twice.
    """
    rows = [
        {
            "run_id": run_id,
            "stage_idx": p[0],
            "key": p[1],
            "step": p[2],
            "value": p[3],
            "wall_ms": p[4],
            "seq": p[5] if len(p) > 5 else None,
        }
        for p in points
    ]
    if not rows:
        return
    newest: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        slot = (row["stage_idx"], row["key"])
        if slot not in newest or row["step"] >= newest[slot]["step"]:
            newest[slot] = {k: v for k, v in row.items() if k != "seq"}
    with store.session(immediate=True) as s:
        s.execute(sqlite_insert(SqlMetric).prefix_with("OR REPLACE"), rows)
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
        s.execute(upsert, list(newest.values()))


def truncate_metrics_after(store: Store, run_id: str, stage_idx: int, step: int) -> None:
    """Delete points of `stage_idx` after `step` and of every later stage, then rebuild
    the latest values: what a resumed run will write again."""
    with store.session(immediate=True) as s:
        s.execute(
            delete(SqlMetric).where(
                SqlMetric.run_id == run_id,
                or_(
                    SqlMetric.stage_idx > stage_idx,
                    and_(SqlMetric.stage_idx == stage_idx, SqlMetric.step > step),
                ),
            )
        )
        s.execute(delete(SqlLatestMetric).where(SqlLatestMetric.run_id == run_id))
        last = (
            select(SqlMetric.stage_idx, SqlMetric.key, func.max(SqlMetric.step).label("step"))
            .where(SqlMetric.run_id == run_id)
            .group_by(SqlMetric.stage_idx, SqlMetric.key)
            .subquery()
        )
        rows = s.execute(
            select(
                SqlMetric.stage_idx,
                SqlMetric.key,
                SqlMetric.step,
                SqlMetric.value,
                SqlMetric.wall_ms,
            )
            .join(
                last,
                and_(
                    SqlMetric.stage_idx == last.c.stage_idx,
                    SqlMetric.key == last.c.key,
                    SqlMetric.step == last.c.step,
                ),
            )
            .where(SqlMetric.run_id == run_id)
        ).all()
        if rows:
            s.execute(
                insert(SqlLatestMetric),
                [
                    {
                        "run_id": run_id,
                        "stage_idx": r[0],
                        "key": r[1],
                        "step": r[2],
                        "value": r[3],
                        "wall_ms": r[4],
                    }
                    for r in rows
                ],
            )


def latest_metrics(store: Store, run_id: str) -> list[MetricInfo]:
    """The newest point of every series of a run."""
    with store.session() as s:
        rows = s.scalars(select(SqlLatestMetric).where(SqlLatestMetric.run_id == run_id))
        return [MetricInfo(r.stage_idx, r.key, r.step, r.value, r.wall_ms) for r in rows]


def read_series(
    store: Store, run_id: str, key: str, stage_idx: int | None = None, max_points: int | None = None
) -> tuple[list[int], list[float]]:
    """Steps and values of a series, ordered by stage then step.

    With `max_points`, the series is cut into buckets and each keeps its minimum and its
    maximum, so a spike survives downsampling (never a sample that hides it).
    """
    with store.session() as s:
        query = select(SqlMetric.step, SqlMetric.value).where(
            SqlMetric.run_id == run_id, SqlMetric.key == key
        )
        if stage_idx is not None:
            query = query.where(SqlMetric.stage_idx == stage_idx)
        rows = s.execute(query.order_by(SqlMetric.stage_idx, SqlMetric.step)).all()
    steps, values = [r[0] for r in rows], [r[1] for r in rows]
    if max_points is None or len(steps) <= max_points:
        return steps, values
    return _peak_downsample(steps, values, max(max_points // 2, 1))


def _peak_downsample(
    steps: list[int], values: list[float], buckets: int
) -> tuple[list[int], list[float]]:
    size = -(-len(steps) // buckets)
    out_steps, out_values = [], []
    for start in range(0, len(steps), size):
        chunk = range(start, min(start + size, len(steps)))
        lo = min(chunk, key=values.__getitem__)
        hi = max(chunk, key=values.__getitem__)
        for i in sorted({lo, hi}):
            out_steps.append(steps[i])
            out_values.append(values[i])
    return out_steps, out_values


def export_metrics_rows(store: Store, run_id: str) -> list[tuple[str, int, str, float, int]]:
    """(stage name, step, key, value, wall_ms) of every point, by stage, key and step."""
    with store.session() as s:
        rows = s.execute(
            select(SqlStage.name, SqlMetric.step, SqlMetric.key, SqlMetric.value, SqlMetric.wall_ms)
            .join(
                SqlStage,
                and_(SqlStage.run_id == SqlMetric.run_id, SqlStage.idx == SqlMetric.stage_idx),
            )
            .where(SqlMetric.run_id == run_id)
            .order_by(SqlMetric.stage_idx, SqlMetric.key, SqlMetric.step)
        ).all()
    return [tuple(r) for r in rows]


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
    """Every point of a run (stage_idx, key, step, value), in storage order."""
    with store.session() as s:
        yield from s.execute(
            select(SqlMetric.stage_idx, SqlMetric.key, SqlMetric.step, SqlMetric.value)
            .where(SqlMetric.run_id == run_id)
            .order_by(SqlMetric.stage_idx, SqlMetric.key, SqlMetric.step)
        )
