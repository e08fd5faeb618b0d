"""GUI fixtures: a main window on a private workspace, with a plan of our choosing."""

from __future__ import annotations

import gc

import pytest

from app import create_main_window
from app.model.plan_document import PlanDocument


@pytest.fixture(autouse=True)
def collector_back_on():
    """A window turns automatic garbage collection off for its process (it collects on the
    GUI thread: app/qt/qt_collector.py); after its test, once its windows are closed, the
    garbage goes here, and the tests after it get the collector as it was."""
    enabled = gc.isenabled()
    yield
    gc.collect()
    if enabled:
        gc.enable()


@pytest.fixture
def window(qtbot, tmp_path):
    win = create_main_window(tmp_path / "ws")
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1400, 900)
    win.show()
    return win


def mark_saved(win) -> None:
    """No unsaved-changes prompt when pytest-qt closes the window."""
    win.doc._saved_text = win.doc.to_yaml()


@pytest.fixture
def empty_window(window, tmp_path):
    window.set_document(PlanDocument.empty(tmp_path))
    return window
