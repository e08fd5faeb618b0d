"""Queries on sweeps and their trials. A sweep belongs to an experiment; each trial is a
run of that experiment (with its own plan text: the experiment's plan with the trial's
settings), so monitor, compare, resume and export work on trials unchanged."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.db import Store
from engine.store.experiments import new_id, now_ms
from engine.store.models import SqlSweep, SqlSweepTrial
from engine.store.records import Ambiguous, NotFound, RunBusy
from engine.store.status import SweepStatus, TrialStatus, effective_status


@dataclass(frozen=True)
class TrialInfo:
    """A trial of a sweep."""

    number: int
    run_id: str | None
    params: dict[str, Any]
    status: str
    objective: float | None
    intermediate: list[tuple[int, float]]
    created_ms: int
    ended_ms: int | None


@dataclass(frozen=True)
class SweepInfo:
    """A sweep; `status` is the effective one (`interrupted` if its process is gone)."""

    id: str
    experiment_id: str
    spec: dict[str, Any]
    status: str
    stored_status: str
    stop_reason: str | None
    gpus: str
    parallel: int
    use_cache: bool
    pid: int | None
    host: str | None
    created_ms: int
    started_ms: int | None
    ended_ms: int | None
    trials: tuple[TrialInfo, ...] = field(default=())


def _trial(row: SqlSweepTrial) -> TrialInfo:
    return TrialInfo(
        number=row.number,
        run_id=row.run_id,
        params=json.loads(row.params),
        status=row.status,
        objective=math.nan
        if row.objective is None and row.status == TrialStatus.FINISHED
        else row.objective,
        intermediate=[(int(s), float(v)) for s, v in json.loads(row.intermediate or "[]")],
        created_ms=row.created_ms,
        ended_ms=row.ended_ms,
    )


def _info(session: Session, row: SqlSweep) -> SweepInfo:
    trials = session.scalars(
        select(SqlSweepTrial).where(SqlSweepTrial.sweep_id == row.id).order_by(SqlSweepTrial.number)
    ).all()
    return SweepInfo(
        id=row.id,
        experiment_id=row.experiment_id,
        spec=json.loads(row.spec_text),
        status=effective_status(row.status, row.pid, row.host, row.heartbeat_ms),
        stored_status=row.status,
        stop_reason=row.stop_reason,
        gpus=row.gpus,
        parallel=row.parallel,
        use_cache=bool(row.use_cache),
        pid=row.pid,
        host=row.host,
        created_ms=row.created_ms,
        started_ms=row.started_ms,
        ended_ms=row.ended_ms,
        trials=tuple(_trial(t) for t in trials),
    )


def create_sweep(
    store: Store,
    experiment_id: str,
    spec: dict[str, Any],
    *,
    gpus: str = "cpu",
    parallel: int = 1,
    use_cache: bool = True,
) -> str:
    """Record a sweep of an experiment (not started yet); returns its id."""
    sweep_id = new_id()
    with store.session(immediate=True) as s:
        s.add(
            SqlSweep(
                id=sweep_id,
                experiment_id=experiment_id,
                spec_text=json.dumps(spec, sort_keys=True),
                status=SweepStatus.RUNNING,
                gpus=gpus,
                parallel=parallel,
                use_cache=use_cache,
                created_ms=now_ms(),
                # No owner yet: `interrupted` until a sweep process claims it.
                heartbeat_ms=None,
            )
        )
    return sweep_id


def _resolve(session: Session, ref: str) -> SqlSweep:
    row = session.get(SqlSweep, ref)
    if row is not None:
        return row
    if len(ref) >= 4:
        rows = session.scalars(select(SqlSweep).where(SqlSweep.id.startswith(ref))).all()
        if len(rows) == 1:
            return rows[0]
        if len(rows) > 1:
            raise Ambiguous(f"'{ref}' matches {len(rows)} sweeps; give more of the id")
    raise NotFound(f"no sweep '{ref}'; see `stagelab ls` for sweep ids")


def get_sweep(store: Store, ref: str) -> SweepInfo:
    """A sweep with its trials, by id or unique id prefix.

    Raises:
        NotFound: nothing matches.
        Ambiguous: several sweeps match.
    """
    with store.session() as s:
        return _info(s, _resolve(s, ref))


def list_sweeps(store: Store, experiment_id: str | None = None) -> list[SweepInfo]:
    """Sweeps, oldest first, with their trials."""
    with store.session() as s:
        query = select(SqlSweep).order_by(SqlSweep.created_ms, SqlSweep.id)
        if experiment_id is not None:
            query = query.where(SqlSweep.experiment_id == experiment_id)
        return [_info(s, r) for r in s.scalars(query)]


def claim_sweep(store: Store, sweep_id: str, *, pid: int, host: str) -> None:
    """Make the calling process the sweep's owner.

    Raises:
        RunBusy: a live process owns the sweep already.
    """
    with store.session(immediate=True) as s:
        row = _resolve(s, sweep_id)
        live = effective_status(row.status, row.pid, row.host, row.heartbeat_ms)
        if live == SweepStatus.RUNNING and row.pid not in (None, pid):
            raise RunBusy(f"sweep {row.id} is already running (pid {row.pid} on {row.host})")
        stamp = now_ms()
        row.status, row.pid, row.host, row.heartbeat_ms = SweepStatus.RUNNING, pid, host, stamp
        row.started_ms = row.started_ms or stamp
        row.ended_ms, row.stop_reason = None, None


def sweep_heartbeat(store: Store, sweep_id: str) -> None:
    """The sweep process is alive."""
    with store.session(immediate=True) as s:
        _resolve(s, sweep_id).heartbeat_ms = now_ms()


def end_sweep(store: Store, sweep_id: str, status: str, reason: str) -> None:
    """Record how a sweep ended ('finished', 'stopped' or 'failed') and why."""
    with store.session(immediate=True) as s:
        row = _resolve(s, sweep_id)
        row.status, row.stop_reason, row.ended_ms = status, reason, now_ms()


def add_trial(
    store: Store, sweep_id: str, number: int, params: dict[str, Any], run_id: str
) -> None:
    """Record a started trial."""
    with store.session(immediate=True) as s:
        s.add(
            SqlSweepTrial(
                sweep_id=sweep_id,
                number=number,
                run_id=run_id,
                params=json.dumps(params, sort_keys=True),
                status=TrialStatus.RUNNING,
                created_ms=now_ms(),
            )
        )


def update_trial(store: Store, sweep_id: str, number: int, **fields: Any) -> None:
    """Change a trial's status, objective or intermediate values."""
    if "intermediate" in fields:
        fields["intermediate"] = json.dumps(fields["intermediate"])
    if "objective" in fields and fields["objective"] is not None:
        if math.isnan(fields["objective"]):
            fields["objective"] = None  # NULL is NaN, as in latest_metrics
    with store.session(immediate=True) as s:
        row = s.get(SqlSweepTrial, (sweep_id, number))
        if row is None:
            raise NotFound(f"sweep {sweep_id} has no trial {number}")
        for key, value in fields.items():
            setattr(row, key, value)
        if fields.get("status") in set(TrialStatus) - {TrialStatus.RUNNING}:
            row.ended_ms = now_ms()


def sweep_of_run(store: Store, run_id: str) -> tuple[str, int] | None:
    """(sweep id, trial number) of a run that is a trial, else None."""
    with store.session() as s:
        row = s.scalar(select(SqlSweepTrial).where(SqlSweepTrial.run_id == run_id))
        return (row.sweep_id, row.number) if row is not None else None


def best_trial(info: SweepInfo) -> TrialInfo | None:
    """The finished trial with the best objective value (ties: the earlier), or None."""
    goal = info.spec.get("objective", {}).get("goal", "max")
    best = None
    for t in info.trials:
        if t.status != TrialStatus.FINISHED or t.objective is None or math.isnan(t.objective):
            continue
        if best is None or (
            t.objective > best.objective if goal == "max" else t.objective < best.objective
        ):
            best = t
    return best


__all__ = [
    "best_trial",
    "RunBusy",
    "SweepInfo",
    "TrialInfo",
    "add_trial",
    "claim_sweep",
    "create_sweep",
    "end_sweep",
    "get_sweep",
    "list_sweeps",
    "sweep_heartbeat",
    "sweep_of_run",
    "update_trial",
]
