"""Metric series in chunks: the only code that reads or writes `metric_chunks`.

A series (run, stage, key) is stored as rows of up to `CHUNK_POINTS` consecutive points,
each row four little-endian arrays (steps, values, stream positions, wall times). Appending
fills the series' last chunk, then starts new ones; a point for a step already stored
replaces it (a resumed run rewrites the steps after its checkpoint), so a series never
holds a step twice. Reading a million points is a few hundred blob reads and one
`numpy.frombuffer` per array, instead of a million rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from engine.store.models import SqlMetricChunk as C

CHUNK_POINTS = 2048  # ~64 kB a chunk: a flush rewrites at most that much per series
SeriesKey = tuple[int, str]  # (stage_idx, key)


@dataclass
class Block:
    """Points of one series, sorted by step (int64 steps, seqs, walls; float64 values)."""

    steps: np.ndarray
    vals: np.ndarray
    seqs: np.ndarray
    walls: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, sel: Any) -> Block:
        return Block(self.steps[sel], self.vals[sel], self.seqs[sel], self.walls[sel])

    @classmethod
    def concat(cls, blocks: list[Block]) -> Block:
        if len(blocks) == 1:
            return blocks[0]
        return cls(*(np.concatenate([getattr(b, f) for b in blocks]) for f in FIELDS))

    @classmethod
    def of_points(cls, points: list[tuple[int, float, int, int]]) -> Block:
        """(step, value, wall_ms, seq) tuples, in any order; a step given twice keeps the
        later one."""
        steps = np.fromiter((p[0] for p in points), np.int64, len(points))
        vals = np.fromiter((p[1] for p in points), np.float64, len(points))
        walls = np.fromiter((p[2] for p in points), np.int64, len(points))
        seqs = np.fromiter((p[3] or 0 for p in points), np.int64, len(points))
        return cls(steps, vals, seqs, walls).sorted_unique()

    def sorted_unique(self) -> Block:
        """Sorted by step; of equal steps the last given wins."""
        if len(self) < 2 or (np.diff(self.steps) > 0).all():
            return self
        order = np.argsort(self.steps, kind="stable")
        steps = self.steps[order]
        keep = np.append(steps[1:] != steps[:-1], True)
        return self[order[keep]]


FIELDS = ("steps", "vals", "seqs", "walls")
DTYPES = {"steps": "<i8", "vals": "<f8", "seqs": "<i8", "walls": "<i8"}


def packed(block: Block) -> dict[str, Any]:
    """The column values of a chunk holding `block` (1 … CHUNK_POINTS points)."""
    seqs = block.seqs[block.seqs > 0]
    return {
        "first_step": int(block.steps[0]),
        "last_step": int(block.steps[-1]),
        "n": len(block),
        "min_seq": int(seqs.min()) if len(seqs) else 0,
        "max_seq": int(seqs.max()) if len(seqs) else 0,
        **{f: np.ascontiguousarray(getattr(block, f), DTYPES[f]).tobytes() for f in FIELDS},
    }


def unpacked(row: Any, fields: tuple[str, ...] = FIELDS) -> Block:
    """A chunk row (with at least `fields`) as arrays; fields not read are empty."""
    arrays = {
        f: np.frombuffer(getattr(row, f), DTYPES[f]) if f in fields else np.empty(0, DTYPES[f])
        for f in FIELDS
    }
    return Block(**arrays)


def _chunks(block: Block) -> Iterator[Block]:
    for start in range(0, len(block), CHUNK_POINTS):
        yield block[start : start + CHUNK_POINTS]


# --- writing ----------------------------------------------------------------------------


def group_points(points: Iterable[tuple[Any, ...]]) -> dict[SeriesKey, Block]:
    """(stage_idx, key, step, value, wall_ms[, seq]) points by series."""
    grouped: dict[SeriesKey, list[tuple[int, float, int, int]]] = {}
    for p in points:
        grouped.setdefault((int(p[0]), str(p[1])), []).append(
            (int(p[2]), float(p[3]), int(p[4]), int(p[5]) if len(p) > 5 and p[5] else 0)
        )
    return {slot: Block.of_points(rows) for slot, rows in grouped.items()}


def append(s: Session, run_id: str, slot: SeriesKey, new: Block) -> None:
    """Add points to a series (inside the caller's write transaction)."""
    if not len(new):
        return
    stage, key = slot
    where = (C.run_id == run_id, C.stage_idx == stage, C.key == key)
    last = s.execute(select(C).where(*where).order_by(C.first_step.desc()).limit(1)).scalar()
    if last is not None and new.steps[0] <= last.last_step:
        # A step already stored comes again: rewrite every chunk it reaches (rare).
        rows = s.scalars(
            select(C).where(*where, C.last_step >= int(new.steps[0])).order_by(C.first_step)
        ).all()
        merged = Block.concat([*(unpacked(r) for r in rows), new]).sorted_unique()
        s.execute(delete(C).where(*where, C.last_step >= int(new.steps[0])))
        s.flush()
        _insert(s, run_id, slot, merged)
        return
    if last is not None and last.n < CHUNK_POINTS:
        room = CHUNK_POINTS - last.n
        filled = Block.concat([unpacked(last), new[:room]])
        s.execute(
            update(C)
            .where(*where, C.first_step == last.first_step)
            .values(**{k: v for k, v in packed(filled).items() if k != "first_step"})
        )
        new = new[room:]
    _insert(s, run_id, slot, new)


def _insert(s: Session, run_id: str, slot: SeriesKey, block: Block) -> None:
    rows = [
        {"run_id": run_id, "stage_idx": slot[0], "key": slot[1], **packed(part)}
        for part in _chunks(block)
    ]
    if rows:
        s.execute(insert(C), rows)


def truncate_after(s: Session, run_id: str, stage_idx: int, step: int) -> None:
    """Drop the points of `stage_idx` after `step` and every point of later stages."""
    s.execute(
        delete(C).where(
            C.run_id == run_id,
            or_(C.stage_idx > stage_idx, and_(C.stage_idx == stage_idx, C.first_step > step)),
        )
    )
    straddling = s.scalars(
        select(C).where(
            C.run_id == run_id, C.stage_idx == stage_idx, C.first_step <= step, C.last_step > step
        )
    ).all()
    for row in straddling:
        block = unpacked(row)
        kept = block[block.steps <= step]
        s.execute(
            update(C)
            .where(
                C.run_id == run_id,
                C.stage_idx == row.stage_idx,
                C.key == row.key,
                C.first_step == row.first_step,
            )
            .values(**{k: v for k, v in packed(kept).items() if k != "first_step"})
        )


# --- reading ----------------------------------------------------------------------------


def last_points(s: Session, run_id: str) -> dict[SeriesKey, tuple[int, float, int]]:
    """(step, value, wall_ms) of the newest point of every series."""
    newest = (
        select(C.stage_idx, C.key, func.max(C.first_step).label("first"))
        .where(C.run_id == run_id)
        .group_by(C.stage_idx, C.key)
        .subquery()
    )
    rows = s.execute(
        select(C.stage_idx, C.key, C.n, C.steps, C.vals, C.seqs, C.walls).join(
            newest,
            and_(
                C.run_id == run_id,
                C.stage_idx == newest.c.stage_idx,
                C.key == newest.c.key,
                C.first_step == newest.c.first,
            ),
        )
    ).all()
    out = {}
    for row in rows:
        block = unpacked(row)
        out[(row.stage_idx, row.key)] = (
            int(block.steps[-1]),
            float(block.vals[-1]),
            int(block.walls[-1]),
        )
    return out


def read_blocks(
    s: Session,
    run_id: str,
    key: str | None = None,
    stage_idx: int | None = None,
    fields: tuple[str, ...] = FIELDS,
) -> Iterator[tuple[SeriesKey, Block]]:
    """A run's chunks (optionally of one key and stage), by stage, key and step."""
    columns = [getattr(C, f) for f in FIELDS if f in fields]
    query = select(C.stage_idx, C.key, C.max_seq, *columns).where(C.run_id == run_id)
    if key is not None:
        query = query.where(C.key == key)
    if stage_idx is not None:
        query = query.where(C.stage_idx == stage_idx)
    for row in s.execute(query.order_by(C.stage_idx, C.key, C.first_step)):
        yield (row.stage_idx, row.key), unpacked(row, fields)


def read_series_blocks(
    s: Session,
    run_id: str,
    key: str | None = None,
    stage_idx: int | None = None,
    fields: tuple[str, ...] = FIELDS,
) -> Iterator[tuple[SeriesKey, Block]]:
    """Whole series (their chunks joined), by stage then key."""
    current, parts = None, []
    for slot, block in read_blocks(s, run_id, key, stage_idx, fields):
        if parts and slot != current:
            yield current, Block.concat(parts)
            parts = []
        current = slot
        parts.append(block)
    if parts:
        yield current, Block.concat(parts)


def history(
    s: Session, run_id: str, upto: int
) -> Iterator[tuple[SeriesKey, np.ndarray, np.ndarray]]:
    """Every series' (steps, values) with stream position ≤ `upto` (points stored without
    one included), one series at a time."""
    current, steps, vals = None, [], []
    query = (
        select(C.stage_idx, C.key, C.max_seq, C.steps, C.vals)
        .where(C.run_id == run_id)
        .order_by(C.stage_idx, C.key, C.first_step)
    )
    for row in s.execute(query):
        slot = (row.stage_idx, row.key)
        if steps and slot != current:
            yield current, np.concatenate(steps), np.concatenate(vals)
            steps, vals = [], []
        current = slot
        st, va = np.frombuffer(row.steps, "<i8"), np.frombuffer(row.vals, "<f8")
        if row.max_seq > upto:  # newer than the position asked for: filter by point
            seqs = s.scalar(
                select(C.seqs).where(
                    C.run_id == run_id,
                    C.stage_idx == row.stage_idx,
                    C.key == row.key,
                    C.first_step == int(st[0]),
                )
            )
            keep = np.frombuffer(seqs, "<i8") <= upto
            st, va = st[keep], va[keep]
        steps.append(st)
        vals.append(va)
    if steps:
        yield current, np.concatenate(steps), np.concatenate(vals)


def max_seq(s: Session, run_id: str) -> int:
    """The highest stream position of a stored point (0 if none)."""
    return s.scalar(select(func.max(C.max_seq)).where(C.run_id == run_id)) or 0


def points_after(
    s: Session, run_id: str, after: int, upto: int, limit: int
) -> list[tuple[int, int, str, int, float, int]]:
    """The first `limit` points with `after < seq <= upto`, as (seq, stage_idx, key, step,
    value, wall_ms) in seq order. Reads only the chunks whose positions reach that range;
    stops once no unread chunk can hold a point before the `limit`-th one found."""
    metas = s.execute(
        select(C.stage_idx, C.key, C.first_step, C.min_seq)
        .where(C.run_id == run_id, C.max_seq > after, C.min_seq <= upto)
        .order_by(C.min_seq)
    ).all()
    found: list[np.ndarray] = []
    blocks: list[tuple[str, int, Block]] = []
    count = 0
    for meta in metas:
        if count >= limit:
            # The limit-th smallest seq so far: a chunk starting after it adds nothing.
            cutoff = np.partition(np.concatenate(found), limit - 1)[limit - 1]
            if meta.min_seq > cutoff:
                break
        row = s.execute(
            select(C.steps, C.vals, C.seqs, C.walls).where(
                C.run_id == run_id,
                C.stage_idx == meta.stage_idx,
                C.key == meta.key,
                C.first_step == meta.first_step,
            )
        ).one()
        block = unpacked(row)
        block = block[(block.seqs > after) & (block.seqs <= upto)]
        if len(block):
            blocks.append((meta.key, meta.stage_idx, block))
            found.append(block.seqs)
            count += len(block)
    items = [
        (int(q), stage, key, int(st), float(v), int(w))
        for key, stage, b in blocks
        for q, st, v, w in zip(b.seqs, b.steps, b.vals, b.walls, strict=True)
    ]
    items.sort()
    return items[:limit]
