"""What the experiment browser lists: every run with its stage count and best evaluation
result, read in a few set-based queries (never one query per run), and a run's history
read back for the monitor (its events: `stream.read_events`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sqlalchemy import case, func, select, tuple_

from engine.store import series
from engine.store.db import Store
from engine.store.models import SqlMetricChunk, SqlRun, SqlStage
from engine.store.status import STAGE_DONE, effective_status

# Metrics where higher is better; any other `eval/` metric is better when lower.
HIGHER_IS_BETTER = ("accuracy", "f1", "precision", "recall")
# Which evaluation result names a run's "best", in order of preference.
BEST_ORDER = ("eval/accuracy", "eval/f1", "eval/loss", "eval/perplexity")


@dataclass(frozen=True)
class RunRow:
    """A run as the browser lists it."""

    id: str
    experiment_id: str
    number: int
    status: str
    gpus: str
    created_ms: int
    started_ms: int | None
    ended_ms: int | None
    heartbeat_ms: int | None
    stages_done: int
    stages_total: int
    best_key: str | None
    best_value: float | None
    best_stage: int | None = None  # the last stage that evaluates
    best_stage_name: str | None = None


def browse_runs(store: Store) -> list[RunRow]:
    """Every run, newest first, with stages done/total and its best evaluation result."""
    with store.session() as s:
        runs = s.execute(
            select(
                SqlRun.id,
                SqlRun.experiment_id,
                SqlRun.number,
                SqlRun.status,
                SqlRun.pid,
                SqlRun.host,
                SqlRun.heartbeat_ms,
                SqlRun.gpus,
                SqlRun.created_ms,
                SqlRun.started_ms,
                SqlRun.ended_ms,
                SqlRun.target,
            ).order_by(SqlRun.created_ms.desc())
        ).all()
        stages = dict(
            (r[0], (r[1], r[2]))
            for r in s.execute(
                select(
                    SqlStage.run_id,
                    func.count(),
                    func.sum(case((SqlStage.status.in_(sorted(STAGE_DONE)), 1), else_=0)),
                ).group_by(SqlStage.run_id)
            ).all()
        )
        # The best result of the last stage that evaluates: earlier stages are other tasks.
        # Evaluation chunks are few: read them through the (run_id, key) index and reduce
        # here. NaN (a diverged evaluation) is never a best.
        best: dict[str, tuple[int, dict[str, tuple[float, float]]]] = {}
        for run_id, stage, key, blob in s.execute(
            select(
                SqlMetricChunk.run_id,
                SqlMetricChunk.stage_idx,
                SqlMetricChunk.key,
                SqlMetricChunk.vals,
            ).where(
                SqlMetricChunk.run_id.in_([r.id for r in runs]),
                SqlMetricChunk.key.in_(BEST_ORDER),
            )
        ).all():
            values = np.frombuffer(blob, "<f8")
            values = values[~np.isnan(values)]
            last, found = best.get(run_id, (-1, {}))
            if stage > last:
                last, found = stage, {}
            if stage == last and len(values):
                low, high = found.get(key, (math.inf, -math.inf))
                found[key] = (min(low, float(values.min())), max(high, float(values.max())))
            best[run_id] = (last, found)
        best_names = (
            dict(
                ((run_id, idx), name)
                for run_id, idx, name in s.execute(
                    select(SqlStage.run_id, SqlStage.idx, SqlStage.name).where(
                        tuple_(SqlStage.run_id, SqlStage.idx).in_(
                            [(run_id, stage) for run_id, (stage, _) in best.items()]
                        )
                    )
                ).all()
            )
            if best
            else {}
        )
    rows = []
    for r in runs:
        total, done = stages.get(r.id, (0, 0))
        best_stage, found = best.get(r.id, (None, {}))
        key, value = _best(found)
        rows.append(
            RunRow(
                id=r.id,
                experiment_id=r.experiment_id,
                number=r.number,
                status=effective_status(
                    r.status, r.pid, r.host, r.heartbeat_ms, mirrored=r.target is not None
                ),
                gpus=r.gpus,
                created_ms=r.created_ms,
                started_ms=r.started_ms,
                ended_ms=r.ended_ms,
                heartbeat_ms=r.heartbeat_ms,
                stages_done=int(done or 0),
                stages_total=int(total or 0),
                best_key=key,
                best_value=value,
                best_stage=best_stage,
                best_stage_name=best_names.get((r.id, best_stage)),
            )
        )
    return rows


def _best(found: dict[str, tuple[float, float]]) -> tuple[str | None, float | None]:
    for key in BEST_ORDER:
        if key in found:
            low, high = found[key]
            return key, high if key.split("/", 1)[1] in HIGHER_IS_BETTER else low
    return None, None


def read_history(
    store: Store, run_id: str, upto: int
) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    """Every stored series of a run up to stream position `upto`, one at a time, as
    (stage, key, steps, values) arrays with steps ascending."""
    with store.session() as s:
        for (stage, key), steps, values in series.history(s, run_id, upto):
            yield stage, key, steps, values


def read_stage_history(
    store: Store, run_id: str, stage_idx: int
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Every stored series of one stage of a run, as (key, steps, values) with steps
    ascending: the points of a stage that another run reused (the stage cache)."""
    with store.session() as s:
        for (_, key), block in series.read_series_blocks(
            s, run_id, stage_idx=stage_idx, fields=("steps", "vals")
        ):
            yield key, block.steps, block.vals
