"""Alembic, driven from code: the migration scripts ship inside the package, so the store
migrates the same from a checkout, a wheel or a frozen bundle, whatever the working folder.

Opening a database that is already at the newest revision is the common case (every
`stagelab ls`, every engine): it is checked by reading `alembic_version` and the scripts'
revision lines, and Alembic (~0.5 s of imports) loads only when a migration is due."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r'^revision\s*=\s*"([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision\s*=\s*(?:None|"([^"]+)")', re.MULTILINE)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and this engine."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", str(engine.url))
    return config


def head_revision(engine: Engine) -> str:
    """The newest revision of the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision a database is at (None for a new file)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@cache
def scripts_head() -> str | None:
    """The newest revision, read from the scripts' `revision = "…"` and `down_revision = …`
    lines without Alembic: the one revision no script names as its parent. None when that
    is not one revision (a branch, scripts not in that form): then Alembic decides."""
    revisions, parents = set(), set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revision, parent = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or parent is None:
            return None
        revisions.add(revision.group(1))
        if parent.group(1):
            parents.add(parent.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def stored_revisions(engine: Engine) -> list[str]:
    """The revisions in the database's `alembic_version` table (none for a new file)."""
    with engine.connect() as conn:
        has_table = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).first()
        if has_table is None:
            return []
        return [row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]


def is_at_head(engine: Engine) -> bool:
    """Whether the database is at the newest revision, checked without importing Alembic."""
    head = scripts_head()
    return head is not None and stored_revisions(engine) == [head]


def upgrade_to_head(engine: Engine, revision: str = "head", lock_path: Path | None = None) -> None:
    """Migrate the database to `revision` (default: the newest) unless it is there.

    Two processes opening a new database at once (the CLI and an engine, the GUI and a
    `stagelab ls`) would both create the tables; an exclusive lock on `lock_path` makes
    the second wait and then find the database migrated.
    """
    if revision == "head" and is_at_head(engine):
        return
    if revision == "head" and current_revision(engine) == head_revision(engine):
        return
    with _exclusive(lock_path):
        if revision == "head" and current_revision(engine) == head_revision(engine):
            return
        from alembic import command

        config = alembic_config(engine)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)


@contextmanager
def _exclusive(lock_path: Path | None) -> Iterator[None]:
    if lock_path is None:
        yield
        return
    with open(lock_path, "a+b") as fh:
        if sys.platform == "win32":
            import msvcrt

            fh.seek(0)
            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ~10 s; keep waiting
                    continue
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield  # the lock goes with the file handle
