"""The window keeps an engine server (engine.launch.served) once its start is complete, so
runs started from it train at once; it gives it back when it quits, and uses the one the
environment names (or none, when turned off) instead of starting its own."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QApplication

import app.__main__ as entry
from engine.launch.served import OFF, SERVER_ENV


def test_the_window_starts_a_server_after_its_start_and_ends_it_on_quit(window, qtbot, monkeypatch):
    monkeypatch.delenv(SERVER_ENV, raising=False)  # the test session's: the window makes one
    monkeypatch.setattr(entry, "SERVER_DELAY_MS", 0)
    kept = entry.keep_engine_server(QApplication.instance(), window)
    assert SERVER_ENV not in os.environ  # nothing before the start is complete
    window.startCompleted.emit()
    qtbot.waitUntil(lambda: SERVER_ENV in os.environ, timeout=5000)
    assert os.path.basename(os.environ[SERVER_ENV]) == "engine.sock"
    kept.close()  # what quitting the app does (aboutToQuit)
    assert SERVER_ENV not in os.environ


def test_a_named_or_turned_off_server_is_left_as_it_is(window, qtbot, monkeypatch):
    monkeypatch.setattr(entry, "SERVER_DELAY_MS", 0)
    for value in ("/tmp/the-session-server.sock", OFF):
        monkeypatch.setenv(SERVER_ENV, value)
        kept = entry.keep_engine_server(QApplication.instance(), window)
        window.startCompleted.emit()
        qtbot.wait(50)
        assert os.environ[SERVER_ENV] == value
        kept.close()
        assert os.environ[SERVER_ENV] == value
