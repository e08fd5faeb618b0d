"""The window's first paint loads no more than it shows (issue 32, cold start; timing is
bench/gui_start.py's): the store (SQLAlchemy, Alembic), pyqtgraph, numpy and engine.remote
wait for first use, the inspector's memory estimate for after the paint, and the Devices
dock still lists the stored targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.store import Store, Workspace, queries

ROOT = Path(__file__).resolve().parents[2]
DEFERRED = ("sqlalchemy", "alembic", "pyqtgraph", "numpy", "engine.remote", "torch")
FIRST_PAINT = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app import create_main_window
w = create_main_window(sys.argv[1])
seen = {}
def ready():  # the event loop's first idle moment after show, as bench/gui_start.py's READY
    combo = w.target_picker.combo
    seen["modules"] = sorted(sys.modules)
    seen["targets"] = [combo.itemText(i) for i in range(combo.count())]
    seen["memory_at_ready"] = w.inspector.memory_line.text()
    QTimer.singleShot(1000, later)
def later():  # what waited for the paint is there soon after it
    seen["memory_line"] = w.inspector.memory_line.text()
    print(json.dumps(seen))
    app.quit()
w.show()
QTimer.singleShot(0, ready)
app.exec()
"""


def test_the_first_paint_opens_no_store_and_lists_the_targets(tmp_path):
    store = Store.open(Workspace.open(tmp_path).db_path)
    queries.add_target(store, "box", "ssh://me@box", {})
    store.close()
    proc = subprocess.run(
        [sys.executable, "-c", FIRST_PAINT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    loaded = {m for m in seen["modules"] for d in DEFERRED if m == d or m.startswith(d + ".")}
    assert not loaded, sorted(loaded)[:10]
    assert seen["targets"] == ["This machine", "box"]
    assert seen["memory_at_ready"] == ""  # the estimate reads the corpus: after the paint
    assert "params" in seen["memory_line"] and "MB" in seen["memory_line"]
