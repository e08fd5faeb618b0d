"""What the window's runs table lists: every run (or some) with its experiment, tags, note
and the final and best values of the chosen metrics, read in a few set-based queries, never
one per run (10,000 runs open in well under 200 ms: bench/runs_table.py)."""

from __future__ import annotations

import gc
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select

from engine.store.browse import HIGHER_IS_BETTER
from engine.store.db import Store
from engine.store.models import SqlLatestMetric, SqlRun
from engine.store.status import effective_status


@dataclass(slots=True)  # not frozen: a frozen init costs 5x, and 10,000 are made at once
class TableRun:
    """A run as the runs table shows it. `final` and `best` map a metric key to (value,
    stage index): its last value, and its best evaluation value, in the last stage that
    records it (None where it was NaN); `stage_names` names the stages."""

    id: str
    experiment_id: str
    experiment: str
    number: int
    status: str
    target: str | None
    created_ms: int
    started_ms: int | None
    ended_ms: int | None
    heartbeat_ms: int | None
    tags: tuple[str, ...]
    note: str
    plan_text: str = ""
    final: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    best: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    state: tuple = ()  # what `run_states` says of it (a refresh compares them)


def higher_is_better(key: str) -> bool:
    """Whether a larger value of this metric is better (`eval/accuracy`, `eval/f1/x`)."""
    parts = key.split("/")
    return len(parts) > 1 and parts[1] in HIGHER_IS_BETTER


@contextmanager
def _no_gc() -> Iterator[None]:
    """The collector paused while tens of thousands of small tuples and dicts are made: in
    the window's heap its passes cost a third of the read (measured: 182 -> 123 ms CPU)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def table_runs(
    store: Store,
    metrics: Iterable[str] = (),
    best: Iterable[str] = (),
    *,
    plans: bool = False,
    run_ids: Iterable[str] | None = None,
) -> list[TableRun]:
    """Runs newest first with the final values of `metrics` and the best of `best`; with
    `plans` their plan texts too (for plan-setting columns). `run_ids` limits the read
    (a refresh of the runs still live)."""
    with _no_gc():
        return _table_runs(store, metrics, best, plans, run_ids)


def _table_runs(store, metrics, best, plans, run_ids) -> list[TableRun]:
    metrics, best = sorted(set(metrics)), sorted(set(best))
    ids = None if run_ids is None else list(run_ids)

    def where(column: str, *conditions: str) -> tuple[str, list]:
        parts, params = list(conditions), []
        if ids is not None:
            parts.append(f"{column} IN ({','.join('?' * len(ids))})")
            params = list(ids)
        return (" WHERE " + " AND ".join(parts) if parts else ""), params

    # The raw DB-API cursor: SQLAlchemy's per-row processing costs ~5x the read itself here.
    with store.session() as s:
        db = s.connection().connection.dbapi_connection
        clause, params = where("r.id")
        runs = db.execute(
            "SELECT r.id, r.experiment_id, e.name, r.number, r.status, r.pid, r.host, "
            "r.heartbeat_ms, r.target, r.created_ms, r.started_ms, r.ended_ms, r.note"
            + (", r.plan_text" if plans else "")
            + " FROM runs r JOIN experiments e ON e.id = r.experiment_id"
            + clause
            + " ORDER BY r.created_ms DESC, r.id",
            params,
        ).fetchall()
        tags: dict[str, tuple[str, ...]] = {}
        clause, params = where("run_id")
        for run_id, tag in db.execute(
            f"SELECT run_id, tag FROM run_tags{clause} ORDER BY tag", params
        ):
            tags[run_id] = (*tags.get(run_id, ()), tag)
        finals = _finals(db, metrics, where) if metrics else {}
        bests = _bests(db, best, where) if best else {}
    out = []
    for r in runs:
        (run_id, experiment_id, name, number, status, pid, host, heartbeat, target) = r[:9]
        out.append(
            TableRun(
                id=run_id,
                experiment_id=experiment_id,
                experiment=name,
                number=number,
                status=effective_status(status, pid, host, heartbeat, mirrored=target is not None),
                target=target,
                created_ms=r[9],
                started_ms=r[10],
                ended_ms=r[11],
                heartbeat_ms=heartbeat,
                tags=tags.get(run_id, ()),
                note=r[12] or "",
                plan_text=r[13] if plans else "",
                final=finals.get(run_id, {}),
                best=bests.get(run_id, {}),
                state=(status, r[11], heartbeat, r[12], ",".join(tags.get(run_id, ())) or None),
            )
        )
    return out


def _keys(keys: list[str]) -> str:
    return f"key IN ({','.join('?' * len(keys))})"


def _finals(db, keys: list[str], where) -> dict[str, dict[str, tuple[float | None, int]]]:
    """Final value of each key per run, in the last stage that records it (hot: 30,000
    rows for two keys of 10,000 runs, so no tuple keys and no name lookups here)."""
    found: dict[str, dict[str, tuple[float | None, int]]] = {}
    clause, params = where("run_id", _keys(keys))
    for run_id, idx, key, value in db.execute(
        f"SELECT run_id, stage_idx, key, value FROM latest_metrics{clause}", [*keys, *params]
    ):
        mine = found.get(run_id)
        if mine is None:
            found[run_id] = {key: (value, idx)}
        else:
            old = mine.get(key)
            if old is None or old[1] < idx:
                mine[key] = (value, idx)
    return found


def _bests(db, keys: list[str], where) -> dict[str, dict[str, tuple[float | None, int]]]:
    """Best value of each key per run, in the last stage that records it: evaluation
    series are short, so their chunks are read and reduced here (struct, not numpy: a
    few points each). NaN (a diverged evaluation) is never a best."""
    found: dict[str, dict[str, tuple[float | None, int]]] = {}
    high = {key: higher_is_better(key) for key in keys}
    clause, params = where("run_id", _keys(keys))
    for run_id, idx, key, blob in db.execute(
        f"SELECT run_id, stage_idx, key, vals FROM metric_chunks{clause}", [*keys, *params]
    ):
        mine = found.get(run_id)
        if mine is None:
            mine = found[run_id] = {}
        value, stage = mine.get(key, (None, -1))
        if idx < stage:
            continue
        if idx > stage:
            value = None  # a later stage: its own best only
        values = [v for v in struct.unpack(f"<{len(blob) // 8}d", blob) if v == v]
        if values:
            top = max(values) if high[key] else min(values)
            if value is None or (top > value if high[key] else top < value):
                value = top
        mine[key] = (value, idx)
    return found


def stage_names(store: Store, run_ids: Iterable[str]) -> dict[tuple[str, int], str]:
    """(run id, stage index) → stage name for these runs: the table names the stage of a
    metric only for the rows it shows."""
    ids = list(run_ids)
    if not ids:
        return {}
    with store.session() as s:
        db = s.connection().connection.dbapi_connection
        return {
            (r, i): n
            for r, i, n in db.execute(
                f"SELECT run_id, idx, name FROM stages WHERE run_id IN ({','.join('?' * len(ids))})",
                ids,
            )
        }


def run_count(store: Store) -> int:
    """How many runs the workspace holds."""
    with store.session() as s:
        return (
            s.connection()
            .connection.dbapi_connection.execute("SELECT count(*) FROM runs")
            .fetchone()[0]
        )


def metric_keys(store: Store) -> list[str]:
    """Every metric key any run records, sorted (the column chooser's list)."""
    with store.session() as s:
        return list(s.scalars(select(SqlLatestMetric.key).distinct().order_by(SqlLatestMetric.key)))


def newest_plan(store: Store) -> str:
    """The newest run's plan text ('' without runs): the column chooser offers its settings."""
    with store.session() as s:
        return s.scalar(select(SqlRun.plan_text).order_by(SqlRun.created_ms.desc()).limit(1)) or ""


def run_states(store: Store) -> dict[str, tuple]:
    """Run id → what a refresh compares to know which rows to read again: stored status,
    end, heartbeat, note and tags (a tag or note set from the terminal shows too); equal
    to `TableRun.state` of an unchanged run."""
    with store.session() as s:
        db = s.connection().connection.dbapi_connection
        tags: dict[str, list[str]] = {}
        for run_id, tag in db.execute("SELECT run_id, tag FROM run_tags ORDER BY tag"):
            tags.setdefault(run_id, []).append(tag)
        return {
            r[0]: (*r[1:], ",".join(tags.get(r[0], ())) or None)
            for r in db.execute("SELECT id, status, ended_ms, heartbeat_ms, note FROM runs")
        }
