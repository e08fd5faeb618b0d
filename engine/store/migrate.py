"""Alembic, driven from code: the migration scripts ship inside the package, so the store
migrates the same from a checkout, a wheel or a frozen bundle, whatever the working folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and this engine."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", str(engine.url))
    return config


def head_revision(engine: Engine) -> str:
    """The newest revision of the migration scripts."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision a database is at (None for a new file)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: Engine, revision: str = "head", lock_path: Path | None = None) -> None:
    """Migrate the database to `revision` (default: the newest) unless it is there.

    Two processes opening a new database at once (the CLI and an engine, the GUI and a
    `stagelab ls`) would both create the tables; an exclusive lock on `lock_path` makes
    the second wait and then find the database migrated.
    """
    if revision == "head" and current_revision(engine) == head_revision(engine):
        return
    with _exclusive(lock_path):
        if revision == "head" and current_revision(engine) == head_revision(engine):
            return
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
