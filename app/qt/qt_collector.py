"""Cyclic garbage collection on the GUI thread only, while Stagelab's window is open.

Python's collector runs in whichever thread happens to allocate past its threshold. In the
window's worker threads (a target's start, the live channel's readers) that thread may
collect a cycle that holds Qt objects, and their C++ destructors then run off the GUI
thread: the window froze for good (the worker and the GUI thread each waiting on a lock
the other held; seen in a test: a QMenu of an earlier window destroyed by the target
thread's collection). So automatic collection is off and a timer of the GUI thread
collects instead, the generations that are due, as the collector would have
(pyqtgraph's `GarbageCollector` does the same for its users).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QTimer, SignalInstance

INTERVAL_MS = 1000
# Its first turn when the window's start is complete (no collection slows the start; it
# allocates much and frees little), at the latest this long after.
START_AT_LATEST_MS = 10_000

_timer: QTimer | None = None


def collect_on_gui_thread(start_completed: SignalInstance) -> None:
    """Turn automatic collection off now; a timer of the GUI thread (one per application,
    however many windows) collects from `start_completed` on. Call on the GUI thread."""
    global _timer
    gc.disable()
    if _timer is None:
        _timer = QTimer(QCoreApplication.instance())
        _timer.setObjectName("guiThreadCollector")
        _timer.timeout.connect(collect_due)
    if not _timer.isActive():
        start_completed.connect(_begin)
        QTimer.singleShot(START_AT_LATEST_MS, _begin)


def _begin() -> None:
    if _timer is not None and not _timer.isActive():
        _timer.start(INTERVAL_MS)


def collect_due() -> None:
    """Collect the generations whose counts passed their thresholds (gc.get_threshold),
    the youngest first, as the automatic collector does."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in range(3):
        if counts[generation] <= thresholds[generation]:
            return
        gc.collect(generation)
