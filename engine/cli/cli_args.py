"""What every `stagelab` command needs: the workspace named on the command line, the
person-facing error, exit codes and argument checks. No torch here, and nothing heavy at
import: the parser's modules import this one, and the store (SQLAlchemy) loads only when a
command opens the workspace (issue 32: `stagelab --help` and the window start do without)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.store.workspace import default_workspace_root  # stdlib only

if TYPE_CHECKING:
    from engine.store import Store, Workspace

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UserError(Exception):
    """Bad input from the person; the message says what to do."""


class LiveError(Exception):
    """The run cannot be reached live; the message says why and what to do."""


def open_workspace(args: argparse.Namespace) -> tuple[Workspace, Store]:
    """The workspace named on the command line, in $STAGELAB_HOME, or the default one.

    Raises:
        UserError: if the folder cannot be created or its database cannot be opened.
    """
    import sqlalchemy.exc

    from engine.store import Store, Workspace

    root = args.workspace
    named = root or default_workspace_root()
    where = "with --workspace DIR" + ("" if root else " or $STAGELAB_HOME")
    try:
        workspace = Workspace.open(root)
    except OSError as exc:
        blocker = _first_non_folder(Path(named).expanduser())
        if blocker is not None:
            raise UserError(
                f"workspace {named}: {blocker} is not a folder; name a workspace folder {where}"
            ) from None
        raise UserError(
            f"workspace {named} cannot be created ({exc.strerror or exc}); "
            f"choose another folder {where}"
        ) from None
    db = workspace.db_path
    try:
        return workspace, Store.open(db)
    except sqlalchemy.exc.DatabaseError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if "not a database" in reason or "malformed" in reason:
            raise UserError(
                f"{db} is not a Stagelab database ({reason}); move it aside or choose another "
                f"workspace {where}"
            ) from None
        raise UserError(
            f"the workspace database {db} cannot be opened ({reason}); check the folder's "
            f"permissions or choose another workspace {where}"
        ) from None
    except OSError as exc:
        raise UserError(
            f"the workspace database {db} cannot be opened ({exc.strerror or exc}); "
            f"choose another workspace {where}"
        ) from None
    except Exception as exc:
        if not _is_alembic_command_error(exc):
            raise
        raise UserError(
            f"the workspace database {db} cannot be read by this version of Stagelab ({exc}); "
            f"update Stagelab or choose another workspace {where}"
        ) from None


def _is_alembic_command_error(exc: Exception) -> bool:
    """Alembic's refusal of a database it has no migration for (a newer Stagelab's). The
    store imports Alembic only to migrate; where it is not imported, it raised nothing."""
    alembic_util = sys.modules.get("alembic.util")
    return alembic_util is not None and isinstance(exc, alembic_util.CommandError)


def _first_non_folder(path: Path) -> Path | None:
    """`path` or the first of its parents that exists but is not a folder."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            return part
    return None


def open_for_writing(path: Path) -> Any:
    """Open a file the person named for writing.

    Raises:
        UserError: with what is wrong with the path and what to do.
    """
    try:
        return open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (returned)
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; name a file such as {path / 'metrics.csv'}") from None
    except FileNotFoundError:
        raise UserError(
            f"cannot write {path}: the folder {path.parent} does not exist; create it or "
            "choose another file"
        ) from None
    except NotADirectoryError:
        blocker = _first_non_folder(path.parent) or path.parent
        raise UserError(
            f"cannot write {path}: {blocker} is not a folder; choose another file"
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot write {path} ({exc.strerror or exc}); choose another file"
        ) from None


def lookup(fn: Any, store: Store, ref: str) -> Any:
    from engine.store.records import StoreError

    try:
        return fn(store, ref)
    except StoreError as exc:
        raise UserError(str(exc)) from None


def parse_gpus(value: str) -> str:
    value = value.strip().lower()
    if value == "cpu":
        return "cpu"
    parts = [p.strip() for p in value.split(",")]
    if not all(p.isdigit() for p in parts):
        raise UserError(f"--gpus must be 'cpu' or GPU indices such as '0' or '0,1' (got '{value}')")
    return ",".join(parts)
