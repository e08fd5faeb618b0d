"""The window's garbage is collected on its own thread only (app/qt/qt_collector.py): a
worker thread's collection destroyed Qt objects off the GUI thread and froze the window."""

from __future__ import annotations

import gc
import threading


def test_only_the_gui_thread_collects_while_the_window_is_open(window, qtbot):
    on_gui_thread: list[bool] = []

    def note(phase: str, _info: dict) -> None:
        if phase == "start":
            on_gui_thread.append(threading.current_thread() is threading.main_thread())

    def churn() -> None:  # cyclic garbage, far past the youngest generation's threshold
        for _ in range(20 * gc.get_threshold()[0]):
            cycle: list = []
            cycle.append(cycle)

    gc.callbacks.append(note)
    try:
        worker = threading.Thread(target=churn, name="stagelab-target")
        worker.start()
        worker.join()
        assert gc.get_count()[0] > gc.get_threshold()[0]  # due, yet the worker never collected
        qtbot.wait(1500)  # a turn of the GUI thread's timer
    finally:
        gc.callbacks.remove(note)
    assert on_gui_thread and all(on_gui_thread), on_gui_thread
    assert gc.get_count()[0] < gc.get_threshold()[0]
