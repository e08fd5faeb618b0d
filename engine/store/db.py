"""Opening the store: SQLite in WAL mode with a busy timeout and foreign keys, migrated to
the newest schema on open, and the one session helper every query goes through."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.store.migrate import upgrade_to_head

# How long a statement waits for another process's write lock before "database is
# locked". STAGELAB_BUSY_TIMEOUT_MS changes it (a slow network disk wants more; the
# write-failure tests want less); read at every connection, not at import (an engine forked
# by the engine server takes its environment after the imports).
DEFAULT_BUSY_TIMEOUT_MS = 30000


def busy_timeout_ms() -> int:
    return int(os.environ.get("STAGELAB_BUSY_TIMEOUT_MS", DEFAULT_BUSY_TIMEOUT_MS))


def _configure(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI objects
        # pysqlite's own transaction handling would defer BEGIN and could not do BEGIN
        # IMMEDIATE; with isolation_level None SQLAlchemy's "begin" event below does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:  # noqa: ANN001
        # Writers take the write lock up front: a deferred transaction that later writes
        # can fail at once with "database is locked" instead of waiting its turn.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Store:
    """The experiment database of a workspace."""

    def __init__(self, engine: Engine, path: Path):
        self.engine = engine
        self.path = path
        self._reader = sessionmaker(bind=engine, expire_on_commit=False)
        self._writer = sessionmaker(
            bind=engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )

    @classmethod
    def open(cls, db_path: str | Path) -> Store:
        """Open (creating and migrating if needed) the database at `db_path`."""
        path = Path(db_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", future=True)
        _configure(engine)
        upgrade_to_head(engine, lock_path=path.with_name(path.name + ".migrate.lock"))
        return cls(engine, path)

    @contextmanager
    def session(self, immediate: bool = False) -> Iterator[Session]:
        """A session that commits on success and rolls back on error.

        Args:
            immediate: take the write lock at BEGIN; use it for every read-modify-write.
        """
        factory = self._writer if immediate else self._reader
        with factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
