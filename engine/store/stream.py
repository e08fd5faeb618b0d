"""A run's live stream read back from the store: metric points and events in `seq` order,
for a channel client that catches up after connecting or after falling behind."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from engine.store import series
from engine.store.db import Store
from engine.store.models import SqlEvent

# An event's columns, in the order of the channel's `event` fields (engine/channel/frames.py).
EVENT_COLUMNS = (
    SqlEvent.seq,
    SqlEvent.stage_idx,
    SqlEvent.kind,
    SqlEvent.level,
    SqlEvent.message,
    SqlEvent.data,
    SqlEvent.wall_ms,
)
EVENT_KEYS = ("seq", "stage", "kind", "level", "message", "data", "wall_ms")


def _event(row: Any) -> tuple[Any, ...]:
    seq, stage, kind, level, message, data, wall = row
    return seq, stage, kind, level, message, json.loads(data) if data else None, wall


def max_seq(store: Store, run_id: str) -> int:
    """The highest stream position stored for a run (0 if none)."""
    with store.session() as s:
        points = series.max_seq(s, run_id)
        events = s.scalar(select(func.max(SqlEvent.seq)).where(SqlEvent.run_id == run_id))
    return max(points or 0, events or 0)


def stream_after(
    store: Store, run_id: str, after: int, upto: int, limit: int
) -> list[tuple[Any, ...]]:
    """Stored items with `after < seq <= upto`, oldest first, at most `limit` of them.

    Items are ("point", seq, stage_idx, key, step, value, wall_ms) and
    ("event", seq, stage_idx, kind, level, message, data, wall_ms).
    """
    with store.session() as s:
        points = series.points_after(s, run_id, after, upto, limit)
        events = s.execute(
            select(*EVENT_COLUMNS)
            .where(SqlEvent.run_id == run_id, SqlEvent.seq > after, SqlEvent.seq <= upto)
            .order_by(SqlEvent.seq)
            .limit(limit)
        ).all()
    items: list[tuple[Any, ...]] = [("point", *p) for p in points]
    items += [("event", *_event(row)) for row in events]
    items.sort(key=lambda item: item[1])
    return items[:limit]


def read_events(store: Store, run_id: str, upto: int) -> list[dict[str, Any]]:
    """A run's events up to stream position `upto` (and any stored before positions
    existed), oldest first, as channel `event` messages."""
    with store.session() as s:
        rows = s.execute(
            select(*EVENT_COLUMNS)
            .where(SqlEvent.run_id == run_id, (SqlEvent.seq <= upto) | SqlEvent.seq.is_(None))
            .order_by(SqlEvent.id)
        ).all()
    return [{"type": "event", **dict(zip(EVENT_KEYS, _event(r), strict=True))} for r in rows]
