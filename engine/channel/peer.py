"""One connected client of the live channel, as the server's I/O thread sees it."""

from __future__ import annotations

import socket
from typing import Any

from engine.channel.protocol import FrameDecoder, FrameError, encode_frame

READ_CHUNK = 65536


class Peer:
    """A client socket with its decoder, its unsent bytes and where it is in the stream.

    States: new (before hello) → idle (authenticated) → catching_up (being sent history
    from the store) → live (sent each record as it comes) ⇄ lagging (too much unsent:
    frames are counted, not encoded, until it reads again and catches up).
    """

    def __init__(self, sock: socket.socket, deadline: float, max_frame: int):
        self.sock = sock
        self.deadline = deadline
        self.decoder = FrameDecoder(max_frame=max_frame)
        self.authenticated = False
        self.name = ""
        self.state = "new"
        self.cursor = 0  # catching up: everything ≤ cursor has been queued
        self.sent_upto = 0  # live: the newest stream position queued for it
        self.dropped = 0
        self.events = 0  # selector interest currently registered
        self._out = bytearray()

    @property
    def unsent(self) -> int:
        """Bytes queued but not yet taken by the socket."""
        return len(self._out)

    # -- stream position ----------------------------------------------------------------------

    def start_catch_up(self, after: int) -> None:
        self.state, self.cursor = "catching_up", after

    def go_live(self, upto: int) -> None:
        self.state, self.sent_upto = "live", upto

    def lag(self) -> None:
        self.state = "lagging"

    def filter_seen(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        """The frame without what this client already has (history may overlap live)."""
        if frame["type"] == "metrics":
            points = [p for p in frame["points"] if p[0] > self.sent_upto]
            if not points:
                return None
            self.sent_upto = points[-1][0]
            return {"type": "metrics", "points": points}
        if frame["type"] == "event":
            if frame["seq"] <= self.sent_upto:
                return None
            self.sent_upto = frame["seq"]
        return frame

    # -- bytes --------------------------------------------------------------------------------

    def send(self, frame: dict[str, Any] | None) -> None:
        """Queue a frame (written when the socket takes it)."""
        if frame is None:
            return
        try:
            self._out += encode_frame(frame)
        except (FrameError, ValueError, TypeError):
            pass  # a record that cannot be framed (too big, not JSON) is not sent live

    def send_now(self, frame: dict[str, Any]) -> None:
        """Queue a frame and try once to write it (used just before closing)."""
        self.send(frame)
        self.write()

    def write(self) -> bool:
        """Write what the socket takes without blocking; False if the peer is gone."""
        while self._out:
            try:
                sent = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if sent == 0:
                return False
            del self._out[:sent]
        return True

    def read(self) -> list[dict[str, Any]] | None:
        """Messages completed by the bytes waiting on the socket; None at end of stream.

        Raises:
            FrameError: the bytes break the protocol.
        """
        try:
            data = self.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not data:
            return None
        return self.decoder.feed(data)
