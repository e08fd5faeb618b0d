"""The workspace: one folder with the database and the runs' files."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


def default_workspace_root() -> Path:
    """`$STAGELAB_HOME`, else the per-user data folder of the platform."""
    if os.environ.get("STAGELAB_HOME"):
        return Path(os.environ["STAGELAB_HOME"]).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Stagelab"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Stagelab"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stagelab"


@dataclass(frozen=True)
class Workspace:
    """Where Stagelab keeps `stagelab.db` and `runs/<run-id>/`."""

    root: Path

    @classmethod
    def open(cls, root: str | Path | None = None) -> Workspace:
        """Open (creating if needed) the workspace at `root`, or the default one."""
        path = Path(root).expanduser() if root else default_workspace_root()
        path = path.resolve()
        (path / "runs").mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def db_path(self) -> Path:
        """The experiment database."""
        return self.root / "stagelab.db"

    @property
    def runs_dir(self) -> Path:
        """Folder of the runs' files."""
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        """Folder of one run: checkpoints, stage outputs, engine log."""
        return self.runs_dir / run_id
