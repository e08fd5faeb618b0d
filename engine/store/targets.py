"""Queries on targets: the places a workspace's runs can train (engine/remote reads them)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from engine.store.db import Store
from engine.store.experiments import now_ms
from engine.store.models import SqlTarget
from engine.store.records import NotFound, StoreError, TargetInfo


def _info(row: SqlTarget) -> TargetInfo:
    return TargetInfo(
        name=row.name,
        url=row.url,
        options=json.loads(row.options or "{}"),
        created_ms=row.created_ms,
    )


def add_target(
    store: Store, name: str, url: str, options: dict[str, Any], *, replace: bool = False
) -> TargetInfo:
    """Store a target. Raises StoreError when the name is taken and `replace` is False."""
    with store.session(immediate=True) as s:
        row = s.get(SqlTarget, name)
        if row is not None and not replace:
            raise StoreError(
                f"a target '{name}' exists already; remove it with `stagelab target rm {name}` "
                "or pick another name"
            )
        if row is None:
            row = SqlTarget(name=name, created_ms=now_ms())
            s.add(row)
        row.url, row.options = url, json.dumps(options, sort_keys=True)
        s.flush()
        return _info(row)


def get_target(store: Store, name: str) -> TargetInfo:
    """A target by name. Raises NotFound."""
    with store.session() as s:
        row = s.get(SqlTarget, name)
        if row is None:
            raise NotFound(f"no target '{name}'; see `stagelab target ls`")
        return _info(row)


def list_targets(store: Store) -> list[TargetInfo]:
    """Every target, by name."""
    with store.session() as s:
        return [_info(r) for r in s.scalars(select(SqlTarget).order_by(SqlTarget.name))]


def remove_target(store: Store, name: str) -> None:
    """Forget a target (its runs keep its name). Raises NotFound."""
    with store.session(immediate=True) as s:
        row = s.get(SqlTarget, name)
        if row is None:
            raise NotFound(f"no target '{name}'; see `stagelab target ls`")
        s.delete(row)
