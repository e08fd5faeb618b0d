"""`python -m app [PLAN] [--workspace DIR] [--screenshot FILE.png]`: open the window."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import time
import types
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Open Stagelab's window (or render it to a PNG and exit)."""
    # The start allocates much and frees little: no cyclic garbage collection during it
    # (~20 ms of the first paint, ~50 ms of the LR preview). Once the window's start is
    # complete it collects on its own thread only (app/qt/qt_collector.py).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return open_window(parse_arguments(argv))
    finally:
        if collecting:
            gc.enable()


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stagelab gui", description=__doc__)
    parser.add_argument("plan", nargs="?", type=Path, help="plan to open (default: the demo)")
    parser.add_argument("--workspace", type=Path, help="workspace folder (default: per user)")
    parser.add_argument("--screenshot", type=Path, help="save the window as a PNG and exit")
    parser.add_argument("--size", default="1400x880", help="window size for --screenshot")
    parser.add_argument("--report-start", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.screenshot and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return args


def open_window(args: argparse.Namespace) -> int:
    """Build and show the window (or its screenshot)."""
    # The plan schema first: once PySide6 is loaded, its import hook reads the source of every
    # module imported after it, which makes pydantic's ~200 modules ~0.1 s slower to load.
    with no_pydantic_plugins():
        from engine.spec import PlanInvalid  # noqa: I001 (before PySide6 on purpose)

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Stagelab")
    app.setOrganizationName("Stagelab")
    apply_system_theme(app)
    try:
        window = create_main_window(args.workspace, args.plan)
    except PlanInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    if args.screenshot:
        width, _, height = args.size.partition("x")
        window.resize(int(width), int(height))
        window.show()
        app.processEvents()
        window.lr_preview.refresh()
        window.inspector.refresh_memory()  # the start leaves it to after the first paint
        ok = window.grab().save(str(args.screenshot))
        print(f"saved {args.screenshot}" if ok else f"could not write {args.screenshot}")
        window.close()
        return 0 if ok else 1
    window.show()
    if args.report_start or os.environ.get(
        "STAGELAB_REPORT_START"
    ):  # bench/gui_start.py: when the window is usable, then complete
        report_start(app, window)
    else:
        keep_engine_server(app, window)
    return app.exec()


# After the window's start is complete: the server's imports (~6 s of one core) must not
# slow the first seconds, when people look around before they press Run.
SERVER_DELAY_MS = 3000


def keep_engine_server(app, window) -> contextlib.ExitStack:
    """An engine server from a few seconds after the window's start until it quits: runs
    started from the window then train at once, not ~6 s later (engine.launch.served,
    docs/engine.md). None where the environment names one already or turns it off
    (`STAGELAB_ENGINE_SERVER=0`). Returns what closes it (also done when the app quits)."""
    from PySide6.QtCore import QTimer

    kept = contextlib.ExitStack()
    started = []  # once; and never after the close (a quit within the delay)
    kept.callback(started.append, "closed")

    def start() -> None:
        from engine.launch.served import engine_server_kept  # standard library only

        if not started:
            started.append("server")
            kept.enter_context(engine_server_kept())

    window.startCompleted.connect(lambda: QTimer.singleShot(SERVER_DELAY_MS, start))
    app.aboutToQuit.connect(kept.close)
    return kept


@contextlib.contextmanager
def no_pydantic_plugins():
    """Build the plan schema's models without looking for pydantic plugins: the search
    imports importlib.metadata (email, zipfile, socket …) and reads the entry points of
    every installed distribution (~100 in the engine's environment), ~15 ms of each start,
    and plugins (observability tools) have nothing to watch in the window. Only for this
    import: models built later find the plugins as usual, and the processes the window
    starts inherit nothing of it."""
    name = "pydantic.plugin._loader"  # where pydantic's validators ask for the plugins
    if name in sys.modules:  # imported already: nothing left to save
        yield
        return
    loader = types.ModuleType(name, "No pydantic plugins while the window starts.")
    loader.get_plugins = lambda: ()

    def real_loader(attr: str):  # a pydantic that wants more of it gets its own loader
        if attr.startswith("__"):  # the import system's questions (__path__ …)
            raise AttributeError(attr)
        if sys.modules.get(name) is loader:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)

    loader.__getattr__ = real_loader
    sys.modules[name] = loader
    try:
        yield
    finally:
        if sys.modules.get(name) is loader:
            del sys.modules[name]


def report_start(app, window) -> None:
    """Print when the event loop is first idle after showing the window (READY) and when
    the LR preview is drawn (PREVIEW), then quit; torch & co. must not be loaded."""
    from PySide6.QtCore import QTimer

    def preview() -> None:
        if window._lr_preview is None:
            QTimer.singleShot(5, preview)
            return
        print(f"PREVIEW {time.time():.6f}", flush=True)
        window.doc._saved_text = window.doc.to_yaml()
        app.quit()

    def ready() -> None:
        print(f"READY {time.time():.6f}", flush=True)
        heavy = [m for m in ("torch", "transformers", "datasets") if m in sys.modules]
        print("HEAVY", heavy, flush=True)
        QTimer.singleShot(0, preview)

    QTimer.singleShot(0, ready)


if __name__ == "__main__":
    sys.exit(main())
