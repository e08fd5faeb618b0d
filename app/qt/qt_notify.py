"""The window's notifications (docs/gui.md, "Notifications"): when a run the monitor
watches ends (finished, failed, its engine gone) the window says so on the desktop through
Qt's tray icon (QSystemTrayIcon.showMessage: the platform's own notifications, no extra
library), or, where there is no tray, in a toast at the window's top right (a click
dismisses it). The
message says when the run's loss went NaN/infinite or a stage stopped early.

Off for runs shorter than the workspace's `notify.min_seconds` (60) and when
`notify.desktop` is false (settings.yaml). The engine's command hook notifies the rest.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QSystemTrayIcon, QWidget

from engine.store.status import LIVE, RunStatus

ENDINGS = {
    RunStatus.FINISHED: "finished",
    RunStatus.FAILED: "failed",
    RunStatus.INTERRUPTED: "stopped unexpectedly (its engine is gone)",
}
WATCHED = LIVE | {RunStatus.QUEUED, "starting"}
TOAST_MS = 10_000


class Toast(QLabel):
    """A short message over the window's bottom right corner, gone after a while."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("notifyToast")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setStyleSheet(
            "QLabel#notifyToast { background: palette(tooltip-base); color: palette(tooltip-text);"
            " border: 1px solid palette(mid); border-radius: 6px; padding: 8px 12px; }"
        )
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.hide)
        self.hide()

    def say(self, title: str, message: str) -> None:
        self.setText(f"{title}\n{message}")
        parent = self.parentWidget()
        self.setFixedWidth(min(420, max(parent.width() // 3, 240)))
        self.adjustSize()
        # Top right, under the toolbar: the buttons along the bottom stay reachable.
        top = parent.centralWidget().y() if hasattr(parent, "centralWidget") else 0
        self.move(parent.width() - self.width() - 16, top + 8)
        self.show()
        self.raise_()
        self.timer.start(TOAST_MS)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - a click dismisses it
        self.hide()
        event.accept()


class WindowNotifier:
    """Says that a watched run ended; `shown` keeps every (title, message) it said."""

    def __init__(self, window: Any):
        self.window = window
        self.last: dict[str, str] = {}  # run id → the status last seen
        self.shown: list[tuple[str, str]] = []
        self.tray: QSystemTrayIcon | None = None
        self.toast: Toast | None = None

    def status_changed(self, run_id: str, status: str) -> None:
        """The monitor's statusChanged: a run seen live that now has ended notifies."""
        before = self.last.get(run_id)
        self.last[run_id] = status
        if before in WATCHED and status in ENDINGS:
            self._ended(run_id, status)

    def _ended(self, run_id: str, status: str) -> None:
        from engine.store import queries
        from engine.store.settings import notify_settings

        settings = notify_settings(self.window.workspace.root)
        store = self.window.store()
        run = queries.get_run(store, run_id)
        end = run.ended_ms or run.heartbeat_ms or run.created_ms
        seconds = (end - (run.started_ms or run.created_ms)) / 1000
        if not settings.desktop or seconds < settings.min_seconds:
            return
        notes = []
        odd = [
            m.key
            for m in queries.latest_metrics(store, run_id)
            if "loss" in m.key and not math.isfinite(m.value)
        ]
        if odd:
            notes.append(f"{odd[0]} went NaN/infinite")
        if queries.list_events(store, run_id, kind="early_stop"):
            notes.append("stopped early")
        if status != RunStatus.FINISHED and run.error:
            notes.append(run.error)
        title = f"Run {run_id} {ENDINGS[status]}"
        self.say(title, "; ".join(notes) or f"after {seconds / 60:.0f} min")

    def say(self, title: str, message: str) -> None:
        """On the desktop where there is a tray, else in a toast."""
        self.shown.append((title, message))
        if QSystemTrayIcon.isSystemTrayAvailable():
            if self.tray is None:
                self.tray = QSystemTrayIcon(self.window.windowIcon(), self.window)
                self.tray.show()
            self.tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Information, 10_000)
            return
        if self.toast is None:
            self.toast = Toast(self.window)
        self.toast.say(title, message)
