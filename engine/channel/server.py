"""The engine's live channel: one local socket per run, served by one I/O thread.

The training thread only hands records to `publish` (a list append under a lock and, at
most once per batch, one byte to wake the I/O thread). Everything else — accepting,
the handshake, encoding, coalescing, writing, catching late clients up from the store —
happens on the I/O thread with non-blocking sockets, so a slow or hostile client can
never stall a training step. Protocol: docs/protocol.md. The sockets themselves (listening,
accepting, the wake-up pair, the handshake's token check) are engine/channel/connections.py;
this module decides what each client is sent.
"""

from __future__ import annotations

import os
import secrets
import selectors
import socket
import threading
import time
from pathlib import Path
from typing import Any

from engine.channel.address import describe, write_connection_file
from engine.channel.connections import Connections, check_hello
from engine.channel.frames import apply_command, history_frames, records_to_frames
from engine.channel.peer import Peer
from engine.channel.progress import ProgressTracker, stage_entries
from engine.channel.protocol import (
    MAX_FRAME,
    PROTOCOL_VERSION,
    FrameError,
    check_client_message,
)
from engine.store import queries
from engine.store.status import RunStatus

CATCH_UP_CHUNK = 2000  # items read from the store per catch-up step
# How long the I/O thread waits for sockets when nothing else is due: new records and
# commands wake it at once, and a client ready for its next catch-up chunk is served
# without waiting (else a long history came at one chunk per wait: 20,000 points ~3 s).
IDLE_POLL_S = 0.25


class ChannelServer:
    """Serves a run's records to authenticated local clients and takes their commands.

    Args:
        recorder: the run's recorder (its listener feeds the channel; its buffer and the
            store give late clients the history).
        control: the training loop's control (pause, resume, stop, checkpoint).
        run_dir: where the connection file is written.
        queue_bytes: unsent bytes a client may have before it counts as lagging.
    """

    def __init__(
        self,
        recorder: Any,
        control: Any,
        run_dir: Path,
        *,
        queue_bytes: int = 1 << 20,
        gpu_monitor: Any = None,
    ):
        self.recorder, self.control, self.run_dir = recorder, control, Path(run_dir)
        self.store, self.run_id = recorder.store, recorder.run_id
        self.queue_bytes = queue_bytes
        self.engine_id = secrets.token_hex(8)
        self.token = secrets.token_hex(32)
        self.status = RunStatus.RUNNING
        self.progress = ProgressTracker()
        self.gpu_monitor = gpu_monitor
        self.dropped_frames = 0  # live frames not sent to lagging clients, all clients
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._outbox_lock = threading.Lock()
        self._wake_pending = False
        self._conn = Connections()
        self._peers = self._conn.peers
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stagelab-channel", daemon=True)
        self.info: dict[str, Any] = {}
        self._last_tick = 0.0
        self._final: str | None = None
        self._status_lock = threading.Lock()

    # -- life ---------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Listen, write the connection file, start the I/O thread; returns the details."""
        self.info = self._conn.listen(self.run_id)
        self.info.update(
            version=PROTOCOL_VERSION,
            token=self.token,
            run_id=self.run_id,
            engine_id=self.engine_id,
            pid=os.getpid(),
        )
        write_connection_file(self.run_dir, self.info)
        queries.set_socket_address(self.store, self.run_id, describe(self.info))
        self._thread.start()
        return self.info

    def finish(self, final_status: str) -> None:
        """The run has ended with `final_status`: stop following the control's state, so
        no status is written after the engine writes the final one."""
        with self._status_lock:
            self._final = final_status

    def close(self, final_status: str | None = None) -> None:
        """Tell clients how the run ended, give them a moment to read it, then shut down."""
        if final_status is not None:
            self.finish(final_status)
        (self.run_dir / "channel.json").unlink(missing_ok=True)
        self._closing.set()
        self._conn.wake()
        self._thread.join(timeout=5)
        if self._conn.socket_path is not None:
            self._conn.socket_path.unlink(missing_ok=True)
        try:
            queries.set_socket_address(self.store, self.run_id, None)
        except Exception:  # noqa: BLE001 - the run's end matters more than this field
            pass

    def address(self) -> str:
        """unix:/path or tcp:host:port."""
        return describe(self.info)

    # -- from the training side (any thread) ---------------------------------------------

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        """A record for live clients (the recorder's listener): cheap and never blocks."""
        with self._outbox_lock:
            self._outbox.append((kind, payload))
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._conn.wake()

    # -- the I/O thread -------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while not self._closing.is_set():
                self._conn.poll(0 if self._catch_up_due() else IDLE_POLL_S, self._service)
                self._distribute()
                self._housekeeping()
            self._say_goodbye()
        finally:
            self._conn.close()

    def _service(self, sock: socket.socket, mask: int) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        if mask & selectors.EVENT_WRITE and not peer.write():
            self._conn.drop(peer)
            return
        if mask & selectors.EVENT_READ:
            try:
                messages = peer.read()
            except FrameError as exc:
                self._conn.refuse(peer, exc.code, str(exc))
                return
            if messages is None:
                self._conn.drop(peer)
                return
            for message in messages:
                try:
                    check_client_message(message)
                    self._handle(peer, message)
                except FrameError as exc:
                    self._conn.refuse(peer, exc.code, str(exc))
                    return
        self._conn.watch_writes(peer)

    def _handle(self, peer: Peer, message: dict[str, Any]) -> None:
        kind = message["type"]
        if not peer.authenticated:
            if kind != "hello":
                raise FrameError("not_authenticated", "send 'hello' with the run's token first")
            check_hello(message, self.token)
            peer.authenticated = True
            peer.name = str(message.get("client", ""))[:60]
            peer.send(self._welcome())
        elif kind == "subscribe":
            peer.start_catch_up(max(message["after"], 0))
        elif kind == "control":
            peer.send(self._control(message["command"], message.get("id")))
        elif kind == "ping":
            peer.send({"type": "pong", "id": message.get("id"), "wall_ms": int(time.time() * 1000)})
        else:
            raise FrameError("bad_message", f"'{kind}' is only valid as the first message")

    def _control(self, command: str, request_id: Any) -> dict[str, Any]:
        message = apply_command(self.control, command)
        self._follow_control()
        return {"type": "ack", "id": request_id, "command": command, "ok": True, "message": message}

    def _follow_control(self) -> None:
        """Publish and store the status the control implies. Done here on the I/O thread —
        for commands from clients and for Ctrl-C/SIGTERM alike — never in a signal handler,
        which could interrupt the training thread while it holds the outbox lock."""
        ctl = self.control
        if ctl.stop_requested:
            status = RunStatus.STOPPING
        else:
            status = RunStatus.PAUSED if ctl.paused else RunStatus.RUNNING
        with self._status_lock:  # `finish` waits for a write in progress
            if status == self.status or self._final is not None:
                return
            self.status = status
            self.publish("status", {"status": status})
            try:
                queries.set_run_status(self.store, self.run_id, status)
            except Exception:  # noqa: BLE001 - the live status still went out
                pass

    def _welcome(self) -> dict[str, Any]:
        return {
            "type": "welcome",
            "version": PROTOCOL_VERSION,
            "run_id": self.run_id,
            "engine_id": self.engine_id,
            "pid": os.getpid(),
            "first_seq": self.recorder.first_seq,
            "last_seq": self.recorder.last_seq,
            "status": self.status,
            "stages": self._stages(),
            "max_frame": MAX_FRAME,
        }

    def _stages(self) -> list[dict[str, Any]]:
        return stage_entries(queries.list_stages(self.store, self.run_id), self.progress)

    # -- fan-out ----------------------------------------------------------------------------

    def _distribute(self) -> None:
        with self._outbox_lock:
            batch, self._outbox = self._outbox, []
            self._wake_pending = False
        frames = self._frames(batch)
        for peer in list(self._peers.values()):
            if peer.state == "live":
                for frame in frames:
                    if peer.unsent > self.queue_bytes:
                        peer.lag()  # stop encoding for it; it catches up from the store later
                    if peer.state == "lagging":
                        peer.dropped += 1
                        self.dropped_frames += 1
                        continue
                    peer.send(peer.filter_seen(frame))
            elif peer.state == "lagging":
                peer.dropped += len(frames)
                self.dropped_frames += len(frames)
            if not peer.write():
                self._conn.drop(peer)
                continue
            self._conn.watch_writes(peer)

    def _frames(self, batch: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        return records_to_frames(batch, self.progress)

    def _housekeeping(self) -> None:
        self._follow_control()
        now = time.monotonic()
        for peer in list(self._peers.values()):
            if not peer.authenticated and now > peer.deadline:
                self._conn.refuse(peer, "timeout", "no 'hello' within the handshake time")
            elif peer.state == "lagging" and self._drained(peer):
                peer.send({"type": "dropped", "count": peer.dropped, "after": peer.sent_upto})
                peer.start_catch_up(peer.sent_upto)
            if peer.state == "catching_up" and self._room_for_chunk(peer):
                self._catch_up(peer)
            if peer.sock in self._peers:
                if not peer.write():
                    self._conn.drop(peer)
                else:
                    self._conn.watch_writes(peer)
        if now - self._last_tick >= 0.5:  # progress and GPU figures twice a second at most
            self._last_tick = now
            extra = [self.progress.frame(self.status)]
            if self.gpu_monitor is not None:
                gpus = self.gpu_monitor()
                if gpus:
                    extra.append({"type": "gpu", "gpus": gpus})
            for peer in self._peers.values():
                if peer.state == "live" and peer.unsent <= self.queue_bytes:
                    for frame in extra:
                        peer.send(frame)

    def _drained(self, peer: Peer) -> bool:
        """A lagging client has read enough of its queue to start catching up."""
        return peer.unsent < self.queue_bytes // 8

    def _room_for_chunk(self, peer: Peer) -> bool:
        """A catching-up client has room for the next chunk of its history."""
        return peer.unsent < self.queue_bytes // 2

    def _catch_up_due(self) -> bool:
        """Whether housekeeping has something to send a lagging or catching-up client now."""
        return any(
            (peer.state == "lagging" and self._drained(peer))
            or (peer.state == "catching_up" and self._room_for_chunk(peer))
            for peer in self._peers.values()
        )

    def _catch_up(self, peer: Peer) -> None:
        """Send the next part of what `peer` is missing; go live once nothing is left."""
        upto, buffered = self.recorder.snapshot_after(peer.cursor)
        stored = queries.stream_after(self.store, self.run_id, peer.cursor, upto, CATCH_UP_CHUNK)
        items = stored if len(stored) == CATCH_UP_CHUNK else stored + buffered
        for frame in history_frames(items):
            peer.send(frame)
        if items:
            peer.cursor = max(peer.cursor, items[-1][1])
        if len(stored) < CATCH_UP_CHUNK:
            peer.go_live(peer.cursor)
            peer.send({"type": "caught_up", "seq": peer.cursor})
            peer.send({"type": "status", "status": self.status})
            for stage in self._stages():
                peer.send({"type": "stage", **stage})
            peer.send(self.progress.frame(self.status))

    def _say_goodbye(self) -> None:
        self._distribute()
        bye = {"type": "bye", "status": self._final or self.status}
        deadline = time.monotonic() + 1.0
        for peer in self._peers.values():
            if peer.state == "live":
                peer.send({"type": "status", "status": bye["status"]})
            if peer.authenticated:
                peer.send(bye)
        while time.monotonic() < deadline and any(p.unsent for p in self._peers.values()):
            for peer in list(self._peers.values()):
                if not peer.write():
                    self._conn.drop(peer)
            time.sleep(0.01)
