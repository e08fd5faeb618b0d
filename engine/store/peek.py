"""Reads the window does before its first paint, through the stdlib's sqlite3: importing
SQLAlchemy and Alembic to open the store costs ~0.3 s of the window's cold start
(bench/gui_start.py), so the store opens on first real use instead."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple


class TargetName(NamedTuple):
    name: str
    url: str


def stored_targets(db_path: Path) -> list[TargetName]:
    """The workspace's targets by name; none while the database does not exist yet, is
    older than the targets table or cannot be read now (nothing is created or migrated)."""
    if not Path(db_path).is_file():
        return []
    try:
        db = sqlite3.connect(db_path, timeout=1.0)
        try:
            rows = db.execute("SELECT name, url FROM targets ORDER BY name").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [TargetName(str(name), str(url)) for name, url in rows]
