"""Several processes opening a new workspace database at the same moment (the CLI, an
engine, the GUI) all succeed: the migration runs once, the others wait for it."""

from __future__ import annotations

import subprocess
import sys

OPEN = "import sys; from engine.store.db import Store; Store.open(sys.argv[1]); print('ok')"


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path):
    for attempt in range(3):
        db = tmp_path / f"new{attempt}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(db)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, [err[-300:] for _, err in results]
