"""Queries on experiments: create, find, list, edit, clone, delete."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.store.db import Store
from engine.store.models import SqlExperiment, SqlExperimentTag, SqlRun
from engine.store.records import Ambiguous, ExperimentInfo, NotFound, RunBusy, RunSummary
from engine.store.status import effective_status


def now_ms() -> int:
    """Wall time in milliseconds."""
    return int(time.time() * 1000)


def new_id() -> str:
    """A 12-hex-digit id: short enough to type, unique enough for one person's work."""
    return uuid.uuid4().hex[:12]


def _info(session: Session, row: SqlExperiment, with_runs: bool = True) -> ExperimentInfo:
    tags = session.scalars(
        select(SqlExperimentTag.tag)
        .where(SqlExperimentTag.experiment_id == row.id)
        .order_by(SqlExperimentTag.tag)
    ).all()
    runs: tuple[RunSummary, ...] = ()
    if with_runs:
        rows = session.scalars(
            select(SqlRun).where(SqlRun.experiment_id == row.id).order_by(SqlRun.number)
        ).all()
        runs = tuple(
            RunSummary(
                r.id,
                r.number,
                effective_status(
                    r.status, r.pid, r.host, r.heartbeat_ms, mirrored=r.target is not None
                ),
                r.created_ms,
                r.ended_ms,
            )
            for r in rows
        )
    return ExperimentInfo(
        id=row.id,
        name=row.name,
        plan_text=row.plan_text,
        plan_dir=row.plan_dir,
        parent_id=row.parent_id,
        notes=row.notes,
        tags=tuple(tags),
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        runs=runs,
    )


def create_experiment(
    store: Store,
    name: str,
    plan_text: str,
    plan_dir: str,
    *,
    parent_id: str | None = None,
    tags: Iterable[str] = (),
    notes: str = "",
) -> str:
    """Record a new experiment; returns its id. A name another experiment has gets a
    number, "distill (2)": two experiments of one name each with a "run 1" read as one in
    the browser, and a name given on the command line must name one experiment."""
    exp_id, stamp = new_id(), now_ms()
    with store.session(immediate=True) as s:
        s.add(
            SqlExperiment(
                id=exp_id,
                name=_free_name(s, name),
                plan_text=plan_text,
                plan_dir=plan_dir,
                parent_id=parent_id,
                notes=notes,
                created_ms=stamp,
                updated_ms=stamp,
            )
        )
        s.flush()
        s.add_all(SqlExperimentTag(experiment_id=exp_id, tag=t) for t in sorted(set(tags)))
    return exp_id


def _free_name(session: Session, name: str) -> str:
    taken = set(
        session.scalars(select(SqlExperiment.name).where(SqlExperiment.name.startswith(name)))
    )
    number = 2
    free = name
    while free in taken:
        free, number = f"{name} ({number})", number + 1
    return free


def _resolve(session: Session, ref: str) -> SqlExperiment:
    row = session.get(SqlExperiment, ref)
    if row is not None:
        return row
    by_name = session.scalars(select(SqlExperiment).where(SqlExperiment.name == ref)).all()
    if len(by_name) == 1:
        return by_name[0]
    if len(ref) >= 4:
        by_prefix = session.scalars(
            select(SqlExperiment).where(SqlExperiment.id.startswith(ref))
        ).all()
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_prefix) > 1:
            raise Ambiguous(f"'{ref}' matches {len(by_prefix)} experiments; give more of the id")
    if len(by_name) > 1:
        raise Ambiguous(
            f"{len(by_name)} experiments are called '{ref}'; give the id (see `stagelab ls`)"
        )
    raise NotFound(f"no experiment '{ref}'; see `stagelab ls` for ids and names")


def get_experiment(store: Store, ref: str) -> ExperimentInfo:
    """An experiment by id, unique id prefix (≥ 4 characters) or exact name.

    Raises:
        NotFound: nothing matches.
        Ambiguous: several match.
    """
    with store.session() as s:
        return _info(s, _resolve(s, ref))


def list_experiments(store: Store) -> list[ExperimentInfo]:
    """Every experiment, oldest first, with its runs summarised."""
    with store.session() as s:
        rows = s.scalars(
            select(SqlExperiment).order_by(SqlExperiment.created_ms, SqlExperiment.id)
        ).all()
        return [_info(s, r) for r in rows]


def update_experiment(
    store: Store,
    exp_id: str,
    *,
    name: str | None = None,
    notes: str | None = None,
    tags: Iterable[str] | None = None,
) -> None:
    """Change an experiment's name, notes or tags."""
    with store.session(immediate=True) as s:
        row = _resolve(s, exp_id)
        if name is not None:
            row.name = name
        if notes is not None:
            row.notes = notes
        if tags is not None:
            s.execute(delete(SqlExperimentTag).where(SqlExperimentTag.experiment_id == row.id))
            s.add_all(SqlExperimentTag(experiment_id=row.id, tag=t) for t in sorted(set(tags)))
        row.updated_ms = now_ms()


def replace_plan(store: Store, exp_id: str, plan_text: str, plan_dir: str) -> None:
    """Change the plan of an experiment that has no runs yet (a clone being edited); the
    plan of an experiment with runs is what they ran, and stays.

    Raises:
        RunBusy: the experiment has runs.
    """
    with store.session(immediate=True) as s:
        row = _resolve(s, exp_id)
        if s.scalar(select(func.count()).select_from(SqlRun).where(SqlRun.experiment_id == row.id)):
            raise RunBusy(f"experiment {row.id} has runs; its plan stays as they ran it")
        row.plan_text, row.plan_dir, row.updated_ms = plan_text, plan_dir, now_ms()


def delete_experiment(store: Store, exp_id: str) -> None:
    """Delete an experiment and (by cascade) its runs and their records."""
    with store.session(immediate=True) as s:
        s.delete(_resolve(s, exp_id))


def clone_experiment(store: Store, ref: str, name: str | None = None) -> str:
    """A new experiment with the same plan and tags; its parent is the source."""
    source = get_experiment(store, ref)
    return create_experiment(
        store,
        name or f"{source.name} (clone)",
        source.plan_text,
        source.plan_dir,
        parent_id=source.id,
        tags=source.tags,
        notes="",
    )
