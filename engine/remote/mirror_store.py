"""Writing a mirrored run into the local store: what the remote engine recorded, once.

Every write is one transaction that reads the local stream position first and keeps only
items after it, so a batch delivered twice (the live channel, then a pull of the same
span) is stored once. Items are applied in stream order: a `truncated` event (a resumed
engine retrains steps) drops the points it names at its own position, as the remote
engine did, so the local series end up equal to the remote ones. The latest-value table
moves on as `queries.add_metrics` moves it, or is rebuilt after a truncation.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store import series
from engine.store.db import Store
from engine.store.metrics import rebuild_latest
from engine.store.models import SqlEvent, SqlLatestMetric, SqlMetricChunk, SqlRun, SqlStage
from engine.store.runs import STAGE_FIELDS
from engine.store.status import ENDED

# ("point", seq, stage, key, step, value, wall_ms) or
# ("event", seq, stage, kind, level, message, data, wall_ms): the shapes of
# `queries.stream_after` and of the channel's history.
Item = tuple[Any, ...]
# Run-row fields a mirror copies from the remote run.
RUN_FIELDS = (
    "status", "error", "started_ms", "ended_ms", "environment", "host", "heartbeat_ms",
    "resume_count",
)  # fmt: skip


def cursor(s: Session, run_id: str) -> int:
    """The highest stream position stored locally for the run (0 if none)."""
    events = s.scalar(select(func.max(SqlEvent.seq)).where(SqlEvent.run_id == run_id))
    return max(series.max_seq(s, run_id), events or 0)


def local_cursor(store: Store, run_id: str) -> int:
    """`cursor` in a read transaction of its own."""
    with store.session() as s:
        return cursor(s, run_id)


def write(
    store: Store,
    run_id: str,
    items: Iterable[Item] = (),
    stages: dict[int, dict[str, Any]] | None = None,
    run: dict[str, Any] | None = None,
) -> int:
    """Store items after the local position, stage-row fields and run-row fields, in one
    transaction; returns the local position after it."""
    with store.session(immediate=True) as s:
        after = cursor(s, run_id)
        fresh: dict[int, Item] = {}
        for item in items:
            if item[1] > after:
                fresh[item[1]] = item
        points: list[tuple[Any, ...]] = []
        events: list[dict[str, Any]] = []
        rebuild = False
        for seq in sorted(fresh):
            item = fresh[seq]
            if item[0] == "point":
                _, seq, stage, key, step, value, wall = item
                points.append((stage, key, step, value, wall, seq))
                continue
            _, seq, stage, kind, level, message, data, wall = item
            events.append(_event_row(run_id, item))
            if kind == "truncated" and isinstance(data, dict) and "after_step" in data:
                _append(s, run_id, points, latest=False)
                points = []
                series.truncate_after(s, run_id, int(data["stage"]), int(data["after_step"]))
                rebuild = True
        _append(s, run_id, points, latest=not rebuild)
        if events:
            s.execute(insert(SqlEvent), events)
        if rebuild:
            rebuild_latest(s, run_id)
        for idx, fields in sorted((stages or {}).items()):
            _stage(s, run_id, idx, fields)
        if run:
            _run(s, run_id, run)
        return max([after, *fresh])


def drop_after(store: Store, run_id: str, seq: int) -> None:
    """Forget the local points and events after stream position `seq`: the remote engine
    sent them live but died before storing them, so the remote record has them not."""
    with store.session(immediate=True) as s:
        s.execute(delete(SqlEvent).where(SqlEvent.run_id == run_id, SqlEvent.seq > seq))
        C = SqlMetricChunk
        rows = s.execute(select(C).where(C.run_id == run_id, C.max_seq > seq)).scalars().all()
        kept: dict[series.SeriesKey, list[series.Block]] = {}
        for row in rows:
            block = series.unpacked(row)
            kept.setdefault((row.stage_idx, row.key), []).append(block[block.seqs <= seq])
        s.execute(delete(C).where(C.run_id == run_id, C.max_seq > seq))
        s.flush()
        for slot, blocks in kept.items():
            block = series.Block.concat(blocks).sorted_unique()
            if len(block):
                series.append(s, run_id, slot, block)
        rebuild_latest(s, run_id)


def _event_row(run_id: str, item: Item) -> dict[str, Any]:
    _, seq, stage, kind, level, message, data, wall = item
    return {
        "run_id": run_id,
        "stage_idx": stage,
        "level": level or "info",
        "kind": kind,
        "message": message,
        "data": json.dumps(data) if data is not None else None,
        "wall_ms": wall,
        "seq": seq,
    }


def _append(s: Session, run_id: str, points: list[tuple[Any, ...]], *, latest: bool) -> None:
    grouped = series.group_points(points)
    for slot, block in grouped.items():
        series.append(s, run_id, slot, block)
    if not latest or not grouped:
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
    upsert = sqlite_insert(SqlLatestMetric)
    upsert = upsert.on_conflict_do_update(
        index_elements=["run_id", "stage_idx", "key"],
        set_={k: getattr(upsert.excluded, k) for k in ("step", "value", "wall_ms")},
        where=upsert.excluded.step >= SqlLatestMetric.step,
    )
    s.execute(upsert, newest)


def _sql_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _stage(s: Session, run_id: str, idx: int, fields: dict[str, Any]) -> None:
    fields = {k: v for k, v in fields.items() if k in STAGE_FIELDS}
    if isinstance(fields.get("final_metrics"), dict | list):
        fields["final_metrics"] = json.dumps(fields["final_metrics"], sort_keys=True)
    row = s.scalar(select(SqlStage).where(SqlStage.run_id == run_id, SqlStage.idx == idx))
    if row is None:
        if not all(fields.get(k) for k in ("name", "kind", "status")):
            return  # a partial update of a row not seen yet: the full row comes later
        row = SqlStage(run_id=run_id, idx=idx, steps_done=0)
        s.add(row)
    elif "output_dir" in fields and _fetched(s, run_id, row.name):
        del fields["output_dir"]  # fetched home: the stage row names the local copy
    for key, value in fields.items():
        setattr(row, key, value)


def _fetched(s: Session, run_id: str, stage: str) -> bool:
    """Whether `stagelab fetch` brought this stage's output home (placement.outputs)."""
    run = s.get(SqlRun, run_id)
    placement = json.loads(run.placement or "{}") if run is not None else {}
    return (placement.get("outputs") or {}).get(stage) == "local"


def _run(s: Session, run_id: str, fields: dict[str, Any]) -> None:
    row = s.get(SqlRun, run_id)
    if row is None:
        return
    for key, value in fields.items():
        if key not in RUN_FIELDS:
            continue
        if key == "environment" and value is not None and not isinstance(value, str):
            value = json.dumps(value, sort_keys=True)
        setattr(row, key, value)
    if fields.get("status") in ENDED and row.ended_ms is None:
        row.ended_ms = fields.get("ended_ms") or int(time.time() * 1000)


def counts(store: Store, run_id: str) -> tuple[int, int]:
    """(points, events with a stream position) stored locally for the run."""
    with store.session() as s:
        points = s.scalar(
            select(func.coalesce(func.sum(SqlMetricChunk.n), 0)).where(
                SqlMetricChunk.run_id == run_id
            )
        )
        events = s.scalar(
            select(func.count()).where(SqlEvent.run_id == run_id, SqlEvent.seq.is_not(None))
        )
    return int(points), int(events)
