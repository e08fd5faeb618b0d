"""The window's end of a run's live channel: a thin Qt adapter over the Qt-free
`RunFollower`. Messages are read on a worker thread and delivered as signals on the GUI
thread; the GUI thread never waits on a socket. They arrive typed (the dataclasses of
`engine.channel.messages`): one that breaks the protocol was dropped by the client and is
only counted (`malformed`)."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.channel.address import ChannelUnavailable
from engine.channel.client import ChannelClient, ChannelClosed, RunFollower
from engine.channel.messages import Bye, ErrorReport, Idle, Metrics, ServerMessage
from engine.store.status import RunStatus


class QtRunChannel(QObject):
    """Follows one run: `message` for every channel message, typed (in stream order, each
    point once, across engine restarts), `ended` with the final status, `commandDone` after
    a control command, `malformed` with the count and the reason when the client dropped a
    message that breaks the protocol. Starts with `follow(after)`; `close()` stops
    following."""

    message = Signal(object)  # an engine.channel.messages.ServerMessage
    ended = Signal(str)
    commandDone = Signal(str, bool, str)  # command, ok, message
    malformed = Signal(int, str)  # messages dropped so far, why the latest was

    def __init__(self, run_dir: str | Path, parent: QObject | None = None):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self._follower: RunFollower | None = None
        self._thread: threading.Thread | None = None

    def follow(self, after: int = 0) -> None:
        """Start following from stream position `after` (what the store already gave)."""
        self._follower = RunFollower(self.run_dir, after=after, name="stagelab window")
        self._thread = threading.Thread(
            target=self._read, name="stagelab-channel-reader", daemon=True
        )
        self._thread.start()

    @property
    def cursor(self) -> int:
        """The newest stream position delivered."""
        return self._follower.cursor if self._follower else 0

    def _read(self) -> None:
        follower = self._follower
        dropped = 0
        try:
            for message in follower.messages():
                if follower.ended and not isinstance(message, Bye):
                    break
                if follower.malformed > dropped:
                    dropped = follower.malformed
                    self.malformed.emit(dropped, follower.last_malformed)
                if not isinstance(message, Idle):
                    self.message.emit(message)
        except RuntimeError:
            return  # this adapter was deleted while reading (the monitor moved on)
        except Exception as exc:  # noqa: BLE001 - the window shows it; the run is unaffected
            self.message.emit(ErrorReport(code="client", message=str(exc)))
        try:
            self.ended.emit(str(follower.status or RunStatus.INTERRUPTED))
        except RuntimeError:
            pass  # deleted meanwhile: nobody is listening

    def send(self, command: str) -> None:
        """Send pause, resume, stop or checkpoint on a connection of its own (so the
        reader's stream is untouched); the answer arrives as `commandDone`."""

        def work() -> None:
            try:
                client = ChannelClient.for_run(self.run_dir, name="stagelab window control")
                try:
                    ack = client.control(command)
                finally:
                    client.close()
                self.commandDone.emit(command, ack.ok, ack.message)
            except (ChannelUnavailable, ChannelClosed) as exc:
                self.commandDone.emit(command, False, str(exc))

        threading.Thread(target=work, name=f"stagelab-{command}", daemon=True).start()

    def close(self) -> None:
        """Stop following (the run goes on)."""
        if self._follower is not None:
            self._follower.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


def points_of(message: ServerMessage, key: str) -> list[tuple[int, int, float]]:
    """(stage, step, value) of `key` in a `metrics` message."""
    if not isinstance(message, Metrics):
        return []
    return [(p.stage, p.step, p.value) for p in message.points if p.key == key]
