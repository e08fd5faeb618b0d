"""The monitor's end of a run's live channel (`QtLiveFollow`): one `QtRunChannel` at a
time, followed from a stream position; the newest position shown; control commands sent;
and where to follow from again once an engine comes back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.qt.monitor.qt_run_channel import QtRunChannel
from engine.channel.messages import ServerMessage


class QtLiveFollow(QObject):
    """Every channel message goes to `on_message`, typed (`engine.channel.messages`);
    `ended` when the channel ended by itself (the engine went away or the run ended);
    `commandFailed` with a line for the log, also said once when the client first drops a
    malformed message from the engine (later ones are only counted)."""

    ended = Signal()
    commandFailed = Signal(str)

    def __init__(
        self,
        store: Callable[[], Any],
        on_message: Callable[[ServerMessage], None],
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.store = store
        self._on_message = on_message
        self.channel: QtRunChannel | None = None
        self.cursor_seen = 0  # newest stream position shown

    def follow(self, run_dir: str | Path, after: int) -> None:
        """Follow the run's channel from stream position `after`."""
        self.stop()
        self.channel = QtRunChannel(run_dir, self)
        self.channel.message.connect(self._on_message)
        self.channel.ended.connect(self._ended)
        self.channel.commandDone.connect(self._command_done)
        self.channel.malformed.connect(self._malformed)
        self.channel.follow(after)

    def _ended(self, _status: str) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.deleteLater()
        self.ended.emit()

    def note_shown(self) -> None:
        """The channel's messages so far are drawn: remember how far."""
        if self.channel is not None:
            self.cursor_seen = max(self.cursor_seen, self.channel.cursor)

    def resume_point(self, run_id: str) -> int:
        """Where to follow from: what is shown, but no further than what is stored (points a
        dead engine sent but never stored are retrained by the next one)."""
        from engine.store import queries

        return min(queries.max_seq(self.store(), run_id), self.cursor_seen)

    def send(self, command: str) -> None:
        """A control command (pause, resume, stop) to the engine, if it is followed."""
        if self.channel is not None:
            self.channel.send(command)

    def _command_done(self, command: str, ok: bool, message: str) -> None:
        if not ok:
            self.commandFailed.emit(f"{command} was not done: {message}")

    def _malformed(self, count: int, reason: str) -> None:
        if count == 1:
            self.commandFailed.emit(
                f"channel: dropped a malformed message from the engine ({reason}); "
                "the record in the store is complete"
            )

    def stop(self) -> None:
        """Stop following (the run goes on)."""
        channel, self.channel = self.channel, None
        if channel is not None:
            channel.message.disconnect()
            channel.ended.disconnect()
            channel.malformed.disconnect()
            channel.close()
            channel.deleteLater()
