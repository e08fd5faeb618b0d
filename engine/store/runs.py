"""Queries on runs and their stages: create, claim by an engine, heartbeat, status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store.db import Store
from engine.store.experiments import new_id, now_ms
from engine.store.models import SqlRun, SqlRunTag, SqlStage
from engine.store.records import Ambiguous, NotFound, RunBusy, RunInfo, StageInfo
from engine.store.status import ENDED, LIVE, STAGE_DONE, RunStatus, StageStatus, effective_status


def _info(row: SqlRun, tags: tuple[str, ...] = ()) -> RunInfo:
    return RunInfo(
        id=row.id,
        experiment_id=row.experiment_id,
        number=row.number,
        status=effective_status(
            row.status, row.pid, row.host, row.heartbeat_ms, mirrored=row.target is not None
        ),
        stored_status=row.status,
        plan_text=row.plan_text,
        plan_dir=row.plan_dir,
        gpus=row.gpus,
        pid=row.pid,
        host=row.host,
        heartbeat_ms=row.heartbeat_ms,
        socket_address=row.socket_address,
        run_dir=row.run_dir,
        error=row.error,
        environment=json.loads(row.environment) if row.environment else None,
        created_ms=row.created_ms,
        started_ms=row.started_ms,
        ended_ms=row.ended_ms,
        resume_count=row.resume_count,
        use_cache=bool(row.use_cache),
        nproc=row.nproc or 1,
        target=row.target,
        placement=json.loads(row.placement or "{}"),
        tags=tags,
        note=row.note or "",
    )


def _tags(session: Session, run_id: str | None = None) -> dict[str, tuple[str, ...]]:
    query = select(SqlRunTag.run_id, SqlRunTag.tag).order_by(SqlRunTag.tag)
    if run_id is not None:
        query = query.where(SqlRunTag.run_id == run_id)
    out: dict[str, tuple[str, ...]] = {}
    for rid, tag in session.execute(query):
        out[rid] = (*out.get(rid, ()), tag)
    return out


def create_run(
    store: Store,
    experiment_id: str,
    *,
    plan_text: str,
    plan_dir: str,
    gpus: str,
    runs_dir: Path,
    use_cache: bool = True,
    nproc: int = 1,
    target: str | None = None,
    placement: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> str:
    """Record a queued run of an experiment and make its folder; returns the run id.

    `use_cache` False trains every stage even where a finished stage in the workspace has
    the same fingerprint (`--no-cache`). `target` names where it trains (None: here);
    `run_id` is given on a target's side, which records the id the desktop chose.
    """
    run_id = run_id or new_id()
    run_dir = Path(runs_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    with store.session(immediate=True) as s:
        number = (
            s.scalar(select(func.max(SqlRun.number)).where(SqlRun.experiment_id == experiment_id))
            or 0
        ) + 1
        s.add(
            SqlRun(
                id=run_id,
                experiment_id=experiment_id,
                number=number,
                status=RunStatus.QUEUED,
                plan_text=plan_text,
                plan_dir=plan_dir,
                gpus=gpus,
                run_dir=str(run_dir),
                created_ms=now_ms(),
                resume_count=0,
                use_cache=use_cache,
                nproc=nproc,
                target=target,
                placement=json.dumps(placement or {}, sort_keys=True),
            )
        )
    return run_id


def _resolve(session: Session, ref: str) -> SqlRun:
    row = session.get(SqlRun, ref)
    if row is not None:
        return row
    if len(ref) >= 4:
        rows = session.scalars(select(SqlRun).where(SqlRun.id.startswith(ref))).all()
        if len(rows) == 1:
            return rows[0]
        if len(rows) > 1:
            raise Ambiguous(f"'{ref}' matches {len(rows)} runs; give more of the id")
    raise NotFound(f"no run '{ref}'; see `stagelab ls` for run ids")


def get_run(store: Store, ref: str) -> RunInfo:
    """A run by id or unique id prefix (≥ 4 characters).

    Raises:
        NotFound: nothing matches.
        Ambiguous: several runs match.
    """
    with store.session() as s:
        row = _resolve(s, ref)
        return _info(row, _tags(s, row.id).get(row.id, ()))


def list_runs(store: Store, experiment_id: str | None = None) -> list[RunInfo]:
    """Runs, oldest first, of one experiment or of all."""
    with store.session() as s:
        query = select(SqlRun).order_by(SqlRun.created_ms, SqlRun.id)
        if experiment_id is not None:
            query = query.where(SqlRun.experiment_id == experiment_id)
        tags = _tags(s)
        return [_info(r, tags.get(r.id, ())) for r in s.scalars(query)]


def claim_run(
    store: Store,
    run_id: str,
    *,
    pid: int,
    host: str,
    socket_address: str | None = None,
    resuming: bool = False,
) -> None:
    """Make the calling engine process the run's owner.

    Raises:
        RunBusy: a live engine owns the run already.
    """
    with store.session(immediate=True) as s:
        row = _resolve(s, run_id)
        live = effective_status(row.status, row.pid, row.host, row.heartbeat_ms)
        if live in LIVE and row.pid != pid:
            raise RunBusy(f"run {row.id} is already running (pid {row.pid} on {row.host})")
        stamp = now_ms()
        row.status, row.pid, row.host, row.heartbeat_ms = RunStatus.RUNNING, pid, host, stamp
        row.socket_address = socket_address
        row.error, row.ended_ms = None, None
        row.started_ms = row.started_ms or stamp
        if resuming:
            row.resume_count += 1


def heartbeat(store: Store, run_id: str) -> None:
    """The engine is alive."""
    with store.session(immediate=True) as s:
        _resolve(s, run_id).heartbeat_ms = now_ms()


def set_run_status(store: Store, run_id: str, status: str, *, error: str | None = None) -> None:
    """Change a run's status; terminal states get their end time."""
    with store.session(immediate=True) as s:
        row = _resolve(s, run_id)
        row.status = status
        if error is not None:
            row.error = error
        if status in ENDED:
            row.ended_ms = now_ms()


def mark_interrupted(store: Store, run_id: str) -> None:
    """Persist `interrupted` for a run whose engine is gone."""
    set_run_status(store, run_id, RunStatus.INTERRUPTED)


def set_run_environment(store: Store, run_id: str, environment: dict[str, Any]) -> None:
    """Record what the run ran on: versions, devices, data fingerprints, seeds."""
    with store.session(immediate=True) as s:
        _resolve(s, run_id).environment = json.dumps(environment, sort_keys=True)


def set_run_nproc(store: Store, run_id: str, nproc: int) -> None:
    """Processes per node from now on (a resume on another number of processes)."""
    with store.session(immediate=True) as s:
        _resolve(s, run_id).nproc = nproc


def set_placement(store: Store, run_id: str, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the run's placement (None drops a key); returns the new one."""
    with store.session(immediate=True) as s:
        row = _resolve(s, run_id)
        placement = json.loads(row.placement or "{}")
        for key, value in fields.items():
            if value is None:
                placement.pop(key, None)
            else:
                placement[key] = value
        row.placement = json.dumps(placement, sort_keys=True)
        return placement


def set_socket_address(store: Store, run_id: str, address: str | None) -> None:
    """Where the run's live channel listens."""
    with store.session(immediate=True) as s:
        _resolve(s, run_id).socket_address = address


# The fields of a stage row an update may set: the columns, less the row's identity.
STAGE_FIELDS = frozenset(c.key for c in SqlStage.__table__.columns) - {"id", "run_id", "idx"}


def check_stage_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stage update, checked: a name that is not a column of the stage row
    is a TypeError (an attribute set on the row would be dropped without a word) and a
    status not a `StageStatus` a ValueError. Returns the fields, the status as the enum."""
    unknown = sorted(set(fields) - STAGE_FIELDS)
    if unknown:
        raise TypeError(
            f"a stage row has no field {', '.join(map(repr, unknown))} "
            f"(it has {', '.join(sorted(STAGE_FIELDS))})"
        )
    if fields.get("status") is not None:
        fields = {**fields, "status": StageStatus(fields["status"])}
    return fields


def upsert_stage(store: Store, run_id: str, idx: int, **fields: Any) -> None:
    """Create or update the stage row `idx` of a run (new rows need name, kind, status).

    Raises:
        TypeError: a field that is not a column of the stage row (`check_stage_fields`).
    """
    fields = check_stage_fields(fields)
    if "final_metrics" in fields and fields["final_metrics"] is not None:
        fields["final_metrics"] = json.dumps(fields["final_metrics"], sort_keys=True)
    with store.session(immediate=True) as s:
        row = s.scalar(select(SqlStage).where(SqlStage.run_id == run_id, SqlStage.idx == idx))
        if row is None:
            row = SqlStage(run_id=run_id, idx=idx, steps_done=0)
            s.add(row)
        for key, value in fields.items():
            setattr(row, key, value)


def _stage_info(r: SqlStage) -> StageInfo:
    return StageInfo(
        idx=r.idx,
        name=r.name,
        kind=r.kind,
        status=r.status,
        started_ms=r.started_ms,
        ended_ms=r.ended_ms,
        global_step_start=r.global_step_start,
        steps_done=r.steps_done,
        total_steps=r.total_steps,
        output_dir=r.output_dir,
        final_metrics=json.loads(r.final_metrics) if r.final_metrics else {},
        fingerprint=r.fingerprint,
        reused_from=(
            {"run": r.reused_run_id, "stage": r.reused_stage_idx}
            if r.reused_run_id is not None
            else None
        ),
    )


def list_stages(store: Store, run_id: str) -> list[StageInfo]:
    """A run's stages in plan order."""
    with store.session() as s:
        rows = s.scalars(select(SqlStage).where(SqlStage.run_id == run_id).order_by(SqlStage.idx))
        return [_stage_info(r) for r in rows]


def find_reusable_stage(
    store: Store, fingerprint: str, *, exclude_run: str | None = None
) -> tuple[str, StageInfo] | None:
    """A finished (or itself reused) stage with this fingerprint whose output folder still
    exists here, as (run id, stage); the oldest trained one first, so reuse always points
    at the stage that trained. None if there is none. A stage trained on a target counts
    only once `stagelab fetch` brought its output home: its row names the target's folder
    (which on a shared file system may even look present here).
    """
    with store.session() as s:
        rows = s.scalars(
            select(SqlStage)
            .where(
                SqlStage.fingerprint == fingerprint,
                SqlStage.status.in_(sorted(STAGE_DONE)),
                SqlStage.output_dir.is_not(None),
            )
            .order_by(SqlStage.reused_run_id.is_not(None), SqlStage.ended_ms, SqlStage.id)
        ).all()
        for r in rows:
            if r.run_id == exclude_run or not Path(r.output_dir).is_dir():
                continue
            if not output_here(s.get(SqlRun, r.run_id), r.name):
                continue
            source = _stage_info(r)
            if source.reused_from is not None:  # point at the stage that trained
                return source.reused_from["run"], source
            return r.run_id, source
    return None


def output_here(run: SqlRun | None, stage: str) -> bool:
    """Whether a stage's output folder is on this machine: a local run's always, a run on
    a target's once fetched (`placement.outputs[stage] == "local"`)."""
    if run is None or not run.target:
        return True
    placement = json.loads(run.placement or "{}")
    return (placement.get("outputs") or {}).get(stage) == "local"


def referenced_outputs(store: Store, run_ids: list[str]) -> dict[str, list[str]]:
    """Output folders of these runs that stages of *other* runs reuse: folder → the runs
    that reuse it. Deleting the runs must keep these folders (reference counting)."""
    doomed = set(run_ids)
    found: dict[str, list[str]] = {}
    with store.session() as s:
        rows = s.scalars(
            select(SqlStage).where(
                SqlStage.status == StageStatus.REUSED, SqlStage.output_dir.is_not(None)
            )
        ).all()
        for r in rows:
            if r.run_id in doomed:
                continue
            owner = r.reused_run_id
            if owner in doomed or _inside_any(r.output_dir, s, doomed):
                found.setdefault(r.output_dir, []).append(r.run_id)
    return found


def _inside_any(folder: str, session: Session, run_ids: set[str]) -> bool:
    for run_id in run_ids:
        row = session.get(SqlRun, run_id)
        if row is not None and Path(folder).resolve().is_relative_to(Path(row.run_dir).resolve()):
            return True
    return False
