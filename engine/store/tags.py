"""A run's tags and note (`stagelab tag/untag/note`, the runs table): a tag is one word, so
the search language can name it (`tag:baseline`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import delete, select

from engine.store.db import Store
from engine.store.models import SqlRunTag
from engine.store.runs import _resolve

# No spaces (a search term ends at one), no comma (the window's tag field separates by it),
# no quote; anything else, as MLflow and W&B allow.
_TAG = re.compile(r"[^\s,\"']{1,100}")


class TagError(ValueError):
    """A tag name that cannot be stored; the message says what to change."""


def check_tags(names: Iterable[str]) -> list[str]:
    """The names stripped, without duplicates, in order.

    Raises:
        TagError: an empty name, or one with a space, comma or quote, or over 100 characters.
    """
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not _TAG.fullmatch(name):
            raise TagError(
                f"'{raw}' cannot be a tag: a tag is 1-100 characters without spaces, "
                "commas or quotes (e.g. baseline or lr-sweep)"
            )
        if name not in out:
            out.append(name)
    return out


def tag_run(store: Store, ref: str, names: Iterable[str]) -> tuple[str, ...]:
    """Add tags to a run (id or prefix); returns its tags now, sorted."""
    wanted = check_tags(names)
    with store.session(immediate=True) as s:
        run_id = _resolve(s, ref).id
        have = set(s.scalars(select(SqlRunTag.tag).where(SqlRunTag.run_id == run_id)))
        s.add_all(SqlRunTag(run_id=run_id, tag=t) for t in wanted if t not in have)
        return tuple(sorted(have | set(wanted)))


def untag_run(store: Store, ref: str, names: Iterable[str]) -> tuple[str, ...]:
    """Remove tags from a run (a tag it has not is no error); returns its tags now."""
    dropped = [n.strip() for n in names]
    with store.session(immediate=True) as s:
        run_id = _resolve(s, ref).id
        s.execute(delete(SqlRunTag).where(SqlRunTag.run_id == run_id, SqlRunTag.tag.in_(dropped)))
        return tuple(
            s.scalars(
                select(SqlRunTag.tag).where(SqlRunTag.run_id == run_id).order_by(SqlRunTag.tag)
            )
        )


def set_run_tags(store: Store, ref: str, names: Iterable[str]) -> tuple[str, ...]:
    """Make a run's tags exactly these (the window's tag editor); returns them sorted."""
    wanted = check_tags(names)
    with store.session(immediate=True) as s:
        run_id = _resolve(s, ref).id
        s.execute(delete(SqlRunTag).where(SqlRunTag.run_id == run_id))
        s.add_all(SqlRunTag(run_id=run_id, tag=t) for t in wanted)
    return tuple(sorted(wanted))


def set_run_note(store: Store, ref: str, text: str) -> None:
    """Replace a run's note (free text; '' clears it)."""
    with store.session(immediate=True) as s:
        _resolve(s, ref).note = text


def tags_of_runs(store: Store, run_ids: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Run id → its tags, sorted; every tagged run when `run_ids` is None. Runs without a
    tag are absent."""
    query = select(SqlRunTag.run_id, SqlRunTag.tag).order_by(SqlRunTag.run_id, SqlRunTag.tag)
    if run_ids is not None:
        query = query.where(SqlRunTag.run_id.in_(list(run_ids)))
    out: dict[str, list[str]] = {}
    with store.session() as s:
        for run_id, tag in s.execute(query):
            out.setdefault(run_id, []).append(tag)
    return {k: tuple(v) for k, v in out.items()}


def all_tags(store: Store) -> list[str]:
    """Every tag in the workspace, sorted (the window offers them when adding one)."""
    with store.session() as s:
        return list(s.scalars(select(SqlRunTag.tag).distinct().order_by(SqlRunTag.tag)))
