"""The live channel's client: stdlib only, no Qt, no torch — the terminal (`stagelab
watch|pause|stop`), the window's Qt adapter and the tests all use it.

`ChannelClient` is one connection. `RunFollower` keeps following a run across engine
restarts: it reconnects, asks for everything after the last stream position it handed
out, and drops what a resumed engine rewrote, so its caller sees every point once.

Messages are typed here, at the boundary (`engine/channel/messages.py`): `receive`,
`control`, `connect` and `RunFollower.messages` hand out the frozen dataclasses, never the
raw dicts. A message from the engine that breaks the protocol is dropped and counted
(`malformed`), never passed on; `recv` is the raw frame reader underneath (protocol tests).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.channel.address import ChannelUnavailable, read_connection_file
from engine.channel.messages import (
    Ack,
    Bye,
    ErrorReport,
    Event,
    Idle,
    MalformedMessage,
    Metrics,
    ServerMessage,
    Status,
    Welcome,
    parse_message,
)
from engine.channel.protocol import PROTOCOL_VERSION, FrameDecoder, FrameError, encode_frame
from engine.store.status import RunStatus


class ChannelClosed(ConnectionError):
    """The engine closed the connection (the run ended, or it refused this client)."""


class ChannelClient:
    """One authenticated connection to a run's engine.

    Args:
        info: the run's connection details (`read_connection_file(run_dir)`).
        name: shown in the engine's log of clients.
        timeout: seconds to connect and to wait for the welcome.
    """

    def __init__(self, info: dict[str, Any], *, name: str = "stagelab", timeout: float = 5.0):
        self.info, self.name, self.timeout = info, name, timeout
        self.sock: socket.socket | None = None
        self.welcome: Welcome | None = None
        self.malformed = 0  # messages from the engine dropped for breaking the protocol
        self.last_malformed = ""  # why the latest one was dropped
        self._decoder = FrameDecoder()
        self._inbox: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)

    @classmethod
    def for_run(cls, run_dir: str | Path, **kwargs: Any) -> ChannelClient:
        """A connected client for the run whose folder is `run_dir`.

        Raises:
            ChannelUnavailable: the run has no live engine.
            ChannelClosed: the engine refused the connection.
        """
        client = cls(read_connection_file(Path(run_dir)), **kwargs)
        client.connect()
        return client

    def connect(self) -> Welcome:
        """Connect and authenticate; returns the welcome message."""
        info = self.info
        try:
            if info["transport"] == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(info["path"])
            else:
                sock = socket.create_connection((info["host"], info["port"]), self.timeout)
        except OSError as exc:
            raise ChannelUnavailable(f"cannot connect to the run's engine: {exc}") from None
        self.sock = sock
        self.send(
            {
                "type": "hello",
                "version": PROTOCOL_VERSION,
                "token": info["token"],
                "client": self.name,
            }
        )
        first = self.recv(self.timeout)
        try:
            welcome = parse_message(first) if first is not None else None
        except MalformedMessage as exc:
            self._count(exc)
            welcome = None
        if not isinstance(welcome, Welcome):
            if isinstance(welcome, ErrorReport):
                reason = welcome.message
            else:
                reason = self.last_malformed or "no welcome from the engine"
            self.close()
            raise ChannelClosed(f"the engine refused the connection: {reason}")
        self.welcome = welcome
        return welcome

    def send(self, message: dict[str, Any]) -> None:
        """Send one message."""
        sock = self.sock
        if sock is None:
            raise ChannelClosed("not connected")
        try:
            sock.sendall(encode_frame(message))
        except OSError as exc:
            raise ChannelClosed(f"the engine went away: {exc}") from None

    def receive(self, timeout: float | None = None) -> ServerMessage | None:
        """The next well-formed message, typed, or None if none came within `timeout`
        seconds. A malformed message is dropped and counted (`malformed`); a type this
        client does not know is skipped (the protocol lets the engine add new ones).

        Raises:
            ChannelClosed: the engine closed the connection.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            raw = self.recv(left)
            if raw is None:
                return None
            try:
                message = parse_message(raw)
            except MalformedMessage as exc:
                self._count(exc)
                continue
            if message is not None:
                return message

    def _count(self, exc: MalformedMessage) -> None:
        self.malformed += 1
        self.last_malformed = str(exc)

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next decoded frame as it came (a dict, unchecked), or None if none came
        within `timeout` seconds. Readers of the run use `receive`.

        Raises:
            ChannelClosed: the engine closed the connection.
        """
        if self._inbox:
            return self._inbox.popleft()
        sock = self.sock  # `close` from another thread sets it to None: this one reads on
        if sock is None:  # a closed socket and gets OSError, not AttributeError
            raise ChannelClosed("not connected")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._inbox:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                sock.settimeout(left)
                data = sock.recv(65536)
            except TimeoutError:
                return None
            except OSError as exc:
                raise ChannelClosed(f"the engine went away: {exc}") from None
            if not data:
                raise ChannelClosed("the engine closed the connection")
            try:
                self._inbox.extend(self._decoder.feed(data))
            except FrameError as exc:
                raise ChannelClosed(f"the engine sent a broken frame: {exc}") from None
        return self._inbox.popleft()

    def subscribe(self, after: int = 0) -> None:
        """Ask for every record after stream position `after` (0: the whole run), then live."""
        self.send({"type": "subscribe", "after": after})

    def control(self, command: str, timeout: float = 10.0) -> Ack:
        """Send pause, resume, stop or checkpoint; returns the engine's acknowledgement.

        Other messages that arrive meanwhile stay queued for `receive`.
        """
        request = next(self._ids)
        self.send({"type": "control", "command": command, "id": request})
        deadline = time.monotonic() + timeout
        held: list[dict[str, Any]] = []
        try:
            while True:
                raw = self.recv(max(deadline - time.monotonic(), 0))
                if raw is None:
                    raise ChannelClosed(f"no answer to '{command}' within {timeout:.0f} s")
                if raw.get("type") not in ("ack", "error"):
                    held.append(raw)  # checked when `receive` hands it out
                    continue
                try:
                    message = parse_message(raw)
                except MalformedMessage as exc:
                    self._count(exc)
                    continue
                if isinstance(message, Ack) and message.id == request:
                    return message
                if isinstance(message, ErrorReport):
                    raise ChannelClosed(message.message or "the engine refused the command")
        finally:
            self._inbox.extendleft(reversed(held))

    def close(self) -> None:
        """Close the connection (the run goes on). Safe from another thread than the one
        reading: the shutdown wakes its recv, which then raises ChannelClosed."""
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected any more
            sock.close()


class RunFollower:
    """Follows a run's live stream from stream position `after`, across reconnects.

    Yields the engine's messages, typed (`engine.channel.messages`; malformed ones are
    dropped and counted in `malformed`); metric points and events are each yielded once, in
    stream order. A resumed run's new engine records a `truncated` event before it trains
    steps again (the caller drops the points it names), and the cursor is moved back to
    what the new engine has stored, so the stream continues without gaps.
    """

    def __init__(self, run_dir: str | Path, *, after: int = 0, name: str = "stagelab"):
        self.run_dir, self.cursor, self.name = Path(run_dir), after, name
        self.engine_id: str | None = None
        self.client: ChannelClient | None = None
        self.status: RunStatus | None = None
        self.ended = False
        # Set by close(): a reader waiting for an engine that has not started (or is away)
        # stops at once instead of polling on to `reconnect_for`; the window joins it on the
        # GUI thread when the monitor leaves such a run.
        self._closed = threading.Event()
        self._malformed_before = 0  # dropped by earlier connections
        self._last_malformed = ""

    @property
    def malformed(self) -> int:
        """Messages from the engine dropped for breaking the protocol, on every connection."""
        client = self.client
        return self._malformed_before + (client.malformed if client is not None else 0)

    @property
    def last_malformed(self) -> str:
        """Why the latest malformed message was dropped ("" if none was)."""
        client = self.client
        return (client.last_malformed if client is not None else "") or self._last_malformed

    def connect(self) -> Welcome:
        """Connect (or reconnect) and subscribe from the cursor; returns the welcome."""
        client = ChannelClient.for_run(self.run_dir, name=self.name)
        welcome = client.welcome
        if self.engine_id is not None and welcome.engine_id != self.engine_id:
            # Positions after the new engine's first were never stored by the old one.
            self.cursor = min(self.cursor, welcome.first_seq - 1)
        self.engine_id, self.client, self.status = welcome.engine_id, client, welcome.status
        client.subscribe(self.cursor)
        return welcome

    def messages(self, *, reconnect_for: float = 15.0) -> Iterator[ServerMessage | Idle]:
        """Every message until the run ends (a `bye`), reconnecting while the engine is
        away for at most `reconnect_for` seconds; `Idle` when nothing came for 0.5 s."""
        while not self.ended:
            if self.client is None:
                welcome = self._reconnect(reconnect_for)
                if welcome is None:
                    return
                yield welcome
            try:
                message = self.client.receive(0.5)
            except (ChannelClosed, AttributeError):  # AttributeError: closed meanwhile
                client, self.client = self.client, None
                if client is not None:
                    self._malformed_before += client.malformed
                    self._last_malformed = client.last_malformed or self._last_malformed
                    client.close()
                continue
            if message is None:
                yield Idle()
                continue
            message = self._advance(message)
            if message is not None:
                yield message

    def _advance(self, message: ServerMessage) -> ServerMessage | None:
        if isinstance(message, Metrics):
            points = tuple(p for p in message.points if p.seq > self.cursor)
            if not points:
                return None
            self.cursor = points[-1].seq
            return Metrics(points=points)
        if isinstance(message, Event):
            if message.seq <= self.cursor:
                return None
            self.cursor = message.seq
        elif isinstance(message, Status):
            self.status = message.status
        elif isinstance(message, Bye):
            self.status, self.ended = message.status, True
        return message

    def _reconnect(self, wait: float) -> Welcome | None:
        deadline = time.monotonic() + wait
        while not self._closed.is_set():
            try:
                welcome = self.connect()
            except (ChannelUnavailable, ChannelClosed):
                if time.monotonic() > deadline:
                    self.ended = True
                    return None
                self._closed.wait(0.25)
                continue
            if self._closed.is_set():  # closed while connecting: nobody reads this one
                self.close()
                return None
            return welcome
        return None

    def control(self, command: str) -> Ack:
        """Send a command on the current connection."""
        if self.client is None:
            self.connect()
        return self.client.control(command)

    def close(self) -> None:
        """Stop following (safe from another thread than the one reading)."""
        self.ended = True
        self._closed.set()
        client, self.client = self.client, None
        if client is not None:
            client.close()
