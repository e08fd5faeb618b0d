"""The live channel's sockets: listening (a private Unix socket, or loopback TCP where
there are none), accepting clients, the wake-up pair the training thread pokes, one
selector over all of them, and the handshake's check of a client's version and token.

`ChannelServer` (engine/channel/server.py) drives them from its I/O thread and decides
what each client is sent; only `wake` is called from other threads.
"""

from __future__ import annotations

import hmac
import os
import selectors
import socket
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.channel.address import private_socket_dir, use_unix_sockets
from engine.channel.peer import Peer
from engine.channel.protocol import HANDSHAKE_TIMEOUT_S, MAX_FRAME, PROTOCOL_VERSION, FrameError

MAX_CLIENTS = 64


def check_hello(message: dict[str, Any], token: str) -> None:
    """Refuse a `hello` that speaks another protocol version or holds the wrong token.

    Raises:
        FrameError: `bad_version` or `bad_token`.
    """
    if message["version"] != PROTOCOL_VERSION:
        raise FrameError(
            "bad_version",
            f"protocol version {message['version']} is not supported; "
            f"this engine speaks {PROTOCOL_VERSION}",
        )
    if not hmac.compare_digest(message["token"].encode(), token.encode()):
        raise FrameError("bad_token", "wrong token; read it from the run's channel.json")


class Connections:
    """The listening socket, the connected clients (`peers`) and the selector over them."""

    def __init__(self) -> None:
        self.peers: dict[socket.socket, Peer] = {}
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._listener: socket.socket | None = None
        self.socket_path: Path | None = None
        # A fork of the engine (a batch-loader worker) would keep the listening socket
        # open after the engine died, until it noticed (~5 s): a client then connected and
        # waited for a welcome that never came, while the resumed engine ran unheard.
        ours = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (c := ours()) is None or c.leave_to_parent())

    def listen(self, run_id: str) -> dict[str, Any]:
        """Open the listening socket; returns how to reach it (transport and path, or
        host and port)."""
        if use_unix_sockets():
            path = private_socket_dir() / f"{run_id[:16]}-{os.getpid()}.sock"
            path.unlink(missing_ok=True)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
            try:
                listener.bind(str(path))
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
            self.socket_path = path
            info: dict[str, Any] = {"transport": "unix", "path": str(path)}
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            info = {"transport": "tcp", "host": "127.0.0.1", "port": listener.getsockname()[1]}
        listener.listen(32)
        listener.setblocking(False)
        self._listener = listener
        self._sel.register(listener, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        return info

    def wake(self) -> None:
        """Wake the I/O thread (any thread)."""
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are shutting down

    def poll(self, timeout: float, service: Callable[[socket.socket, int], None]) -> None:
        """Wait up to `timeout` seconds; accept new clients, take wake-ups, and hand each
        client socket that is ready to `service` with its event mask."""
        for key, mask in self._sel.select(timeout=timeout):
            if key.data == "accept":
                self._accept()
            elif key.data == "wake":
                self._drain_wake()
            else:
                service(key.fileobj, mask)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(self.peers) >= MAX_CLIENTS:
                sock.close()
                continue
            sock.setblocking(False)
            peer = Peer(sock, time.monotonic() + HANDSHAKE_TIMEOUT_S, MAX_FRAME)
            self.peers[sock] = peer
            self._sel.register(sock, selectors.EVENT_READ, peer)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def refuse(self, peer: Peer, code: str, message: str) -> None:
        """Close a peer that broke the protocol, telling it why if its socket takes it."""
        peer.send_now({"type": "error", "code": code, "message": message})
        self.drop(peer)

    def drop(self, peer: Peer) -> None:
        """Forget a client and close its socket."""
        self.peers.pop(peer.sock, None)
        try:
            self._sel.unregister(peer.sock)
        except (KeyError, ValueError):
            pass
        peer.sock.close()

    def watch_writes(self, peer: Peer) -> None:
        """Ask the selector for writability while the peer has unsent bytes."""
        if peer.sock not in self.peers:
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.unsent else 0)
        if want != peer.events:
            peer.events = want
            self._sel.modify(peer.sock, want, peer)

    def leave_to_parent(self) -> None:
        """In a forked child: close this process's copies of the sockets (the engine's
        stay open; the socket file stays)."""
        for sock in [self._listener, self._wake_r, self._wake_w, *self.peers]:
            if sock is not None:
                sock.close()

    def close(self) -> None:
        """Drop every client and close the sockets and the selector (the I/O thread, at
        its end)."""
        for peer in list(self.peers.values()):
            self.drop(peer)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._sel.close()
