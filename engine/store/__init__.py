"""The experiment store: SQLAlchemy models, Alembic migrations, and the queries."""

from engine.store import queries
from engine.store.db import Store
from engine.store.workspace import Workspace, default_workspace_root

__all__ = ["Store", "Workspace", "default_workspace_root", "queries"]
