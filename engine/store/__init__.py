"""The experiment store: SQLAlchemy models, Alembic migrations, and the queries.

Names load on first use (PEP 562), so `engine.store.workspace` can be imported without
SQLAlchemy and Alembic: the window starts faster when it does not yet need the database.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "queries": ("engine.store.queries", None),
    "Store": ("engine.store.db", "Store"),
    "Workspace": ("engine.store.workspace", "Workspace"),
    "default_workspace_root": ("engine.store.workspace", "default_workspace_root"),
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'engine.store' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
