"""Queries on the queue of plans (`stagelab queue`, the window's Queue panel): items are
added waiting, started by the queue runner (engine/queue) as runs, and end done or failed
with the sentence that says why; a removed item is kept for the record, never shown."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from engine.store.db import Store
from engine.store.experiments import now_ms
from engine.store.models import SqlQueueItem, SqlRun
from engine.store.records import NotFound, StoreError
from engine.store.status import LIVE, QueueStatus, effective_status


@dataclass(frozen=True)
class QueueItem:
    """A plan in the queue."""

    id: int
    position: int
    plan_path: str
    target: str | None
    gpus: str
    status: str
    run_id: str | None
    error: str | None
    created_ms: int
    started_ms: int | None
    ended_ms: int | None


def _item(row: SqlQueueItem) -> QueueItem:
    return QueueItem(
        id=row.id,
        position=row.position,
        plan_path=row.plan_path,
        target=row.target,
        gpus=row.gpus,
        status=row.status,
        run_id=row.run_id,
        error=row.error,
        created_ms=row.created_ms,
        started_ms=row.started_ms,
        ended_ms=row.ended_ms,
    )


def add_queue_item(store: Store, plan_path: str, *, target: str | None, gpus: str) -> QueueItem:
    """Put a plan at the end of the queue, waiting."""
    with store.session(immediate=True) as s:
        last = s.scalar(select(func.max(SqlQueueItem.position)))
        row = SqlQueueItem(
            position=(last or 0) + 1,
            plan_path=plan_path,
            target=target,
            gpus=gpus or "cpu",
            status=QueueStatus.WAITING,
            created_ms=now_ms(),
        )
        s.add(row)
        s.flush()
        return _item(row)


def list_queue(store: Store, *, statuses: tuple[str, ...] | None = None) -> list[QueueItem]:
    """The queue in its order, removed items left out (or only the given statuses)."""
    query = select(SqlQueueItem).order_by(SqlQueueItem.position)
    if statuses is None:
        query = query.where(SqlQueueItem.status != QueueStatus.REMOVED)
    else:
        query = query.where(SqlQueueItem.status.in_(statuses))
    with store.session() as s:
        return [_item(r) for r in s.scalars(query)]


def get_queue_item(store: Store, item_id: int) -> QueueItem:
    """One item. Raises NotFound."""
    with store.session() as s:
        row = s.get(SqlQueueItem, item_id)
        if row is None or row.status == QueueStatus.REMOVED:
            raise NotFound(f"no queue item {item_id}; see `stagelab queue ls`")
        return _item(row)


def remove_queue_item(store: Store, item_id: int) -> None:
    """Take an item out of the queue. Raises NotFound, or StoreError for a running one
    (its run goes on: stop the run, and the queue marks the item failed)."""
    with store.session(immediate=True) as s:
        row = s.get(SqlQueueItem, item_id)
        if row is None or row.status == QueueStatus.REMOVED:
            raise NotFound(f"no queue item {item_id}; see `stagelab queue ls`")
        if row.status == QueueStatus.RUNNING:
            raise StoreError(
                f"queue item {item_id} is running as run {row.run_id}; stop it with "
                f"`stagelab stop {row.run_id}` (the queue then goes on)"
            )
        row.status = QueueStatus.REMOVED


def start_queue_item(store: Store, item_id: int, run_id: str) -> bool:
    """Mark a waiting item running as `run_id`; False if it was removed meanwhile."""
    with store.session(immediate=True) as s:
        row = s.get(SqlQueueItem, item_id)
        if row is None or row.status != QueueStatus.WAITING:
            return False
        row.status, row.run_id, row.started_ms = QueueStatus.RUNNING, run_id, now_ms()
        return True


def end_queue_item(
    store: Store, item_id: int, status: str, *, error: str | None = None, run_id: str | None = None
) -> None:
    """Mark an item done or failed (with the sentence that says why)."""
    if status not in (QueueStatus.DONE, QueueStatus.FAILED):
        raise ValueError(f"a queue item ends done or failed, not {status!r}")
    with store.session(immediate=True) as s:
        row = s.get(SqlQueueItem, item_id)
        if row is None:
            raise NotFound(f"no queue item {item_id}; see `stagelab queue ls`")
        row.status, row.error, row.ended_ms = QueueStatus(status), error, now_ms()
        if run_id is not None:
            row.run_id = run_id


def busy_gpus(store: Store) -> set[str]:
    """GPU indices that live runs training on this machine use now (runs on a target use
    the target's GPUs, not ours)."""
    query = select(SqlRun.gpus, SqlRun.status, SqlRun.pid, SqlRun.host, SqlRun.heartbeat_ms).where(
        SqlRun.status.in_(tuple(LIVE)), SqlRun.target.is_(None)
    )
    busy: set[str] = set()
    with store.session() as s:
        for gpus, status, pid, host, beat in s.execute(query):
            if effective_status(status, pid, host, beat) in LIVE:
                busy |= {g for g in gpus.split(",") if g and g != "cpu"}
    return busy
