"""The window's first paint loads no more than it shows (issue 32, cold start; timing is
bench/gui_start.py's): the store (SQLAlchemy, Alembic), pyqtgraph, numpy, engine.remote,
the Playground tab, the sweep form, the members editor, the run notifier and (without the
NVML library) pynvml wait for first use, folded inspector sections, problem lines and the
Queue panel for being shown, the inspector's memory estimate and the LR preview for after
the paint, pydantic's plugin search for a model built after the start, and the Devices
dock still lists the stored targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.model.devices import nvml_library_present
from engine.store import Store, Workspace, queries

ROOT = Path(__file__).resolve().parents[2]
DEFERRED = (
    ("sqlalchemy", "alembic", "pyqtgraph", "numpy", "engine.remote", "torch")
    + ("app.qt.playground", "app.qt.editor.qt_lr_preview", "app.model.size_line")
    + ("app.qt.sweep.qt_sweep_form", "app.qt.editor.qt_members", "app.qt.qt_notify")
    + ("engine.store.status", "app.model.browser_rows")  # run states: on a run's first use
    + ("importlib.resources.readers",)  # engine.resources finds its folder by import spec
    + (() if nvml_library_present() else ("pynvml",))  # with it, the GPUs are listed at once
)
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
    seen["preview_at_ready"] = w._lr_preview is not None
    QTimer.singleShot(1000, later)
def later():  # what waited for the paint is there soon after it
    seen["memory_line"] = w.inspector.memory_line.text()
    seen["preview"] = w._lr_preview is not None
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
    assert not seen["preview_at_ready"] and seen["preview"]


def test_what_waits_for_the_first_paint_waits_for_it_and_the_playground_for_its_tab(
    qtbot, tmp_path
):
    from PySide6.QtWidgets import QToolButton

    from app import create_main_window
    from app.qt.playground.qt_playground import QtPlayground
    from tests.app.conftest import mark_saved

    win = create_main_window(tmp_path / "ws")
    qtbot.addWidget(win, before_close_func=mark_saved)
    qtbot.wait(300)  # unshown: nothing painted, so nothing that waits for a paint starts
    assert win._lr_preview is None and win.inspector.memory_line.text() == ""
    assert win.windowIcon().isNull()  # its files are read after the paint too
    assert win._playground is None and win.tabs.tabText(win._playground_tab) == "Playground"
    assert not win.tabs.findChildren(QtPlayground)
    assert win.queue_actions._panel is None  # its dock is hidden
    inspector = win.inspector  # stage 1 sets no regularization: its section is folded
    assert not [k for k in inspector.editors if k[0] == "regularization"]
    assert all(e._problem_line is None for e in inspector.editors.values())  # no problems
    win.show()
    qtbot.waitUntil(lambda: win._lr_preview is not None, timeout=30_000)
    assert "params" in win.inspector.memory_line.text() and not win.windowIcon().isNull()
    inspector.findChild(QToolButton, "toggle_regularization").click()  # the person opens it
    dropout = inspector.editors[("regularization", "dropout")]
    assert dropout.isVisibleTo(inspector) and dropout.input.placeholderText() == "default: none"
    dropout.edited.emit(-1.0)  # its problem line is made for its first problem
    assert "-1" in str(inspector.doc.value(0, ("regularization", "dropout")))
    assert dropout._problem.isVisibleTo(inspector) and dropout._problem.text()
    win.queue_actions.show_queue()
    assert win.queue_actions.dock.widget() is win.queue_actions.panel
    win.tabs.setCurrentIndex(win._playground_tab)  # the person opens the tab
    assert isinstance(win.tabs.widget(win._playground_tab), QtPlayground)
    assert win.tabs.currentIndex() == win._playground_tab and win.playground.isVisible()


def test_the_quicker_source_check_answers_as_pysides_own(qtbot, tmp_path):
    """PySide6 asks of every module imported after it whether its source mentions PySide6;
    the window starts with a quicker check (app/qt/qt_import_tax.py) that must say the same."""
    import pyqtgraph  # noqa: F401 (many modules, some of them PySide6's users)

    from app import create_main_window
    from tests.app.conftest import mark_saved

    win = create_main_window(tmp_path / "ws")
    qtbot.addWidget(win, before_close_func=mark_saved)
    quick = sys.modules["shibokensupport.feature"]._mod_uses_pyside
    slow = quick.pyside_check  # installed by the window's start
    names = [n for n in sorted(sys.modules) if n.startswith(("app", "engine.spec", "pyqtgraph"))]
    names += ["json", "csv", "sqlite3", "_sqlite3", "shiboken6", "PySide6.QtCore", "yaml"]
    modules = [sys.modules[n] for n in names if n in sys.modules]
    answers = {m.__name__: (quick(m), slow(m)) for m in modules}
    assert len(answers) > 150 and any(q for q, _ in answers.values())
    assert {n: a for n, a in answers.items() if a[0] != a[1]} == {}


GC_DURING_START = """
import gc, json, sys, threading
from app import __main__ as start
seen = {"collections": []}
def note(phase, info):
    if phase == "start":
        seen["collections"].append([seen.get("started", False), threading.current_thread() is threading.main_thread()])
gc.callbacks.append(note)
def report(app, window):
    from PySide6.QtCore import QTimer
    def ready():
        seen["at_ready"] = gc.isenabled()
    def started():
        seen["started"] = True
        for _ in range(2 * gc.get_threshold()[0]):  # garbage for the collector's first turns
            cycle = []
            cycle.append(cycle)
        QTimer.singleShot(1500, done)
    def done():
        seen["after_start"] = gc.isenabled()
        window.doc._saved_text = window.doc.to_yaml()
        app.quit()
    QTimer.singleShot(0, ready)
    window.startCompleted.connect(started)
start.report_start = report
code = start.main(["--workspace", sys.argv[1], "--report-start"])
seen["after_main"] = gc.isenabled()
print(json.dumps(seen))
"""


def test_no_garbage_collection_until_the_window_has_started(tmp_path):
    """The start allocates much and frees little: the window process collects no cyclic
    garbage until the window is up with its LR preview, then on the GUI thread only, from
    a timer (app/qt/qt_collector.py); automatic collection stays off while it runs."""
    proc = subprocess.run(
        [sys.executable, "-c", GC_DURING_START, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    collections = seen.pop("collections")
    assert seen == {"at_ready": False, "started": True, "after_start": False, "after_main": True}
    assert collections and all(after and gui for after, gui in collections), collections


PLUGINS_AFTER_START = """
import json, sys
from app import __main__ as start
seen = {}
def report(app, window):
    from PySide6.QtCore import QTimer
    def ready():
        seen["metadata_at_ready"] = "importlib.metadata" in sys.modules
        window.doc._saved_text = window.doc.to_yaml()
        app.quit()
    QTimer.singleShot(0, ready)
start.report_start = report
start.main(["--workspace", sys.argv[1], "--report-start"])
from pydantic import BaseModel
class Later(BaseModel):  # a model built after the start looks for plugins as usual
    x: int = 0
seen["loader_after"] = getattr(sys.modules["pydantic.plugin._loader"], "__file__", None)
print(json.dumps(seen))
"""


def test_pydantic_looks_for_plugins_only_after_the_window_has_started(tmp_path):
    """The plan schema's models are built without pydantic's plugin search (it imports
    importlib.metadata and reads every installed distribution's entry points); models
    built later search as usual."""
    proc = subprocess.run(
        [sys.executable, "-c", PLUGINS_AFTER_START, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["metadata_at_ready"] is False
    assert seen["loader_after"] and seen["loader_after"].endswith("_loader.py")
