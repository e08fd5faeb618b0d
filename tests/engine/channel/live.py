"""Helpers: a real channel server over a real recorder and SQLite store, with a stand-in for the
training loop that records points from the test thread (no model needed to test a socket)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from engine.channel.client import ChannelClient
from engine.channel.protocol import FrameDecoder
from engine.channel.server import ChannelServer
from engine.runtime.context import Control
from engine.runtime.recorder import Recorder
from engine.store import Store, Workspace, queries


class Live:
    """A run being 'trained' by the test: record points, then check what clients got."""

    def __init__(self, root: Path, queue_bytes: int = 1 << 20):
        ws = Workspace.open(root)
        self.store = Store.open(ws.db_path)
        exp = queries.create_experiment(self.store, "live", "", str(root))
        self.run_id = queries.create_run(
            self.store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=ws.runs_dir
        )
        self.run_dir = Path(queries.get_run(self.store, self.run_id).run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        queries.upsert_stage(self.store, self.run_id, 0, name="s0", kind="train", status="running")
        self.recorder = Recorder(self.store, self.run_id, flush_every=0.2)
        self.recorder.start()
        self.control = Control()
        self.server = ChannelServer(
            self.recorder, self.control, self.run_dir, queue_bytes=queue_bytes
        )
        self.info = self.server.start()
        self.recorder.listeners.append(self.server.publish)
        self.step = 0

    def train(self, steps: int, keys: tuple[str, ...] = ("train/loss", "train/lr")) -> None:
        for _ in range(steps):
            self.step += 1
            self.recorder.metrics(0, self.step, {k: 1.0 / self.step for k in keys})

    def client(self, after: int | None = 0, name: str = "test") -> ChannelClient:
        client = ChannelClient(self.info, name=name)
        client.connect()
        if after is not None:
            client.subscribe(after)
        return client

    def close(self) -> None:
        self.recorder.close()
        self.server.close("finished")


def collect(client: ChannelClient, key: str, until_step: int, timeout: float = 20) -> list[int]:
    """Steps of `key` received until `until_step` arrives (or the time is up)."""
    steps: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not steps or steps[-1] < until_step):
        message = client.recv(0.5)
        if message and message["type"] == "metrics":
            steps += [p[3] for p in message["points"] if p[2] == key]
    return steps


def raw_connection(info: dict) -> socket.socket:
    if info["transport"] == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(info["path"])
    else:
        sock = socket.create_connection((info["host"], info["port"]))
    sock.settimeout(5)
    return sock


def read_until_closed(sock: socket.socket) -> list[dict]:
    """Every message the server sends before it closes the connection."""
    decoder, out = FrameDecoder(), []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        out += decoder.feed(data)
    sock.close()
    return out
