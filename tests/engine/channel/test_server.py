"""The engine's channel server against real sockets: owner-only access, every point once and
in order for any number of clients, bad peers dropped alone, slow clients never blocking."""

from __future__ import annotations

import os
import stat
import struct
import threading
import time
from pathlib import Path

import pytest

from engine.channel import server as server_module
from engine.channel.address import read_connection_file
from engine.channel.client import ChannelClient, ChannelClosed
from engine.channel.protocol import encode_frame
from engine.store import queries
from tests.engine.channel.live import Live, collect, raw_connection, read_until_closed


def test_socket_and_connection_file_are_owner_only(live):
    path = Path(live.info["path"])
    assert live.info["transport"] == "unix"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.parent.stat().st_uid == os.getuid()
    conn_file = live.run_dir / "channel.json"
    assert stat.S_IMODE(conn_file.stat().st_mode) == 0o600
    assert read_connection_file(live.run_dir)["token"] == live.server.token
    assert queries.get_run(live.store, live.run_id).socket_address == f"unix:{path}"


@pytest.mark.parametrize(
    "hello, code",
    [
        ({"type": "hello", "version": 1, "token": "not-the-token"}, "bad_token"),
        ({"type": "hello", "version": 99, "token": None}, "bad_version"),
        ({"type": "subscribe", "after": 0}, "not_authenticated"),
    ],
)
def test_a_refused_hello_gets_an_error_and_is_closed(live, hello, code):
    if hello.get("token") is None:
        hello["token"] = live.server.token
    sock = raw_connection(live.info)
    sock.sendall(encode_frame(hello))
    replies = read_until_closed(sock)
    assert [r["type"] for r in replies] == ["error"] and replies[0]["code"] == code


def test_bad_peers_are_dropped_and_good_clients_keep_receiving(live):
    good = live.client()
    live.train(50)
    garbage = raw_connection(live.info)
    garbage.sendall(b"\x00\x00\x00\x05not json at all" * 3)
    huge = raw_connection(live.info)
    huge.sendall(struct.pack(">I", 1 << 30) + b"x" * 100)  # claims a 1 GB frame
    half = raw_connection(live.info)
    frame = encode_frame({"type": "hello", "version": 1, "token": live.server.token})
    half.sendall(frame[: len(frame) // 2])
    half.close()  # killed mid-frame
    live.train(50)
    assert {r["code"] for r in read_until_closed(garbage)} == {"bad_json"}
    assert {r["code"] for r in read_until_closed(huge)} == {"too_large"}
    assert collect(good, "train/loss", 100) == list(range(1, 101))
    # And a newcomer still gets in and sees the whole history.
    assert collect(live.client(), "train/loss", 100) == list(range(1, 101))


def test_twenty_clients_each_receive_every_point_once_in_order(live):
    clients = [live.client(name=f"c{i}") for i in range(20)]
    results: dict[int, list[int]] = {}

    def read(i: int, client: ChannelClient) -> None:
        results[i] = collect(client, "train/lr", 400)

    threads = [threading.Thread(target=read, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    live.train(400)
    for t in threads:
        t.join()
    assert all(results[i] == list(range(1, 401)) for i in range(20))


def test_a_late_client_gets_the_stored_and_the_buffered_history_without_gaps(live):
    live.train(300)
    live.recorder.flush()  # part of it in the database …
    live.train(200)  # … and part still in the recorder's buffer
    late = live.client()
    live.train(100)  # and part live
    assert collect(late, "train/loss", 600) == list(range(1, 601))


def test_subscribing_after_a_position_sends_only_what_follows(live):
    first = live.client()
    live.train(100)
    seen = []
    while not seen or seen[-1][3] < 100:
        message = first.recv(5)
        if message["type"] == "metrics":
            seen += message["points"]
    cursor = seen[99][0]  # up to (and including) point 100 of the two keys interleaved
    again = live.client(after=cursor)
    live.train(20)
    points = []
    while not points or points[-1][3] < 120:
        message = again.recv(5)
        if message["type"] == "metrics":
            points += message["points"]
    assert [p[0] for p in points] == sorted({p[0] for p in points})
    assert points[0][0] == cursor + 1 and points[-1][3] == 120


def test_a_client_that_never_reads_never_blocks_recording_and_catches_up_later(
    tmp_path, monkeypatch
):
    # Catch-up is not paced by the I/O thread's idle wait: at 5 s a wait, the ten chunks
    # of history would take 50 s (they came one per wait, 20,000 points in ~3 s at 0.25 s).
    monkeypatch.setattr(server_module, "IDLE_POLL_S", 5.0)
    live = Live(tmp_path / "ws", queue_bytes=64 * 1024)
    try:
        stalled = live.client()
        reader = live.client()
        live.train(20_000)  # ~2.5 MB of frames: far more than the stalled client's queue
        assert collect(reader, "train/loss", 20_000) == list(range(1, 20_001))
        assert live.server.dropped_frames > 0
        # Once it reads again it gets everything, once, from the store and the buffer.
        steps, dropped = [], None
        deadline = time.monotonic() + 20
        while (not steps or steps[-1] < 20_000) and time.monotonic() < deadline:
            message = stalled.recv(1)
            if message is None:
                continue
            if message["type"] == "dropped":
                dropped = message["count"]
            if message["type"] == "metrics":
                steps += [p[3] for p in message["points"] if p[2] == "train/loss"]
        assert dropped and dropped > 0
        assert steps == list(range(1, 20_001))
    finally:
        live.close()


def test_control_commands_reach_the_training_loop(live):
    client = live.client(after=None)
    assert client.control("pause").ok and live.control.paused
    assert queries.get_run(live.store, live.run_id).stored_status == "paused"
    assert client.control("resume").ok and not live.control.paused
    assert client.control("checkpoint").ok and live.control.checkpoint_requested
    assert client.control("stop").ok and live.control.stop_requested
    statuses = []
    while (message := client.recv(1)) is not None:
        if message["type"] == "status":
            statuses.append(message["status"])
    assert statuses == []  # not subscribed: acknowledgements only
    watcher = live.client()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = watcher.recv(0.5)
        if message and message["type"] == "status":
            assert message["status"] == "stopping"
            break
    else:
        pytest.fail("no status message")


def test_loopback_tcp_with_a_token_where_unix_sockets_are_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("STAGELAB_CHANNEL", "tcp")
    live = Live(tmp_path / "ws")
    try:
        assert live.info["transport"] == "tcp" and live.info["host"] == "127.0.0.1"
        client = live.client()
        live.train(30)
        assert collect(client, "train/loss", 30) == list(range(1, 31))
        bad = dict(live.info, token="guess")
        with pytest.raises(ChannelClosed):
            ChannelClient(bad).connect()
    finally:
        live.close()


def test_the_run_ending_says_goodbye_and_removes_the_connection_file(tmp_path):
    live = Live(tmp_path / "ws")
    client = live.client()
    live.train(5)
    live.close()
    kinds = []
    while True:
        try:
            message = client.recv(5)
        except ChannelClosed:
            break
        if message is None:
            break
        kinds.append(message["type"])
    assert kinds[-1] == "bye"
    assert not (live.run_dir / "channel.json").exists()
    assert not Path(live.info["path"]).exists()


def test_nan_and_infinities_reach_live_and_late_clients_as_floats(live):
    import math

    early = live.client()
    values = [0.5, math.nan, math.inf, -math.inf]
    for i, value in enumerate(values, start=1):
        live.recorder.metrics(0, i, {"train/loss": value})
    live.recorder.event("eval", "diverged", data={"loss": math.nan})
    live.recorder.flush()  # stored, so a late client reads them back from the database
    late = live.client()

    def received(client) -> tuple[list[float], list[dict]]:
        got, events = [], []
        deadline = time.monotonic() + 10
        while (len(got) < 4 or not events) and time.monotonic() < deadline:
            message = client.recv(0.5)
            if message and message["type"] == "metrics":
                got += [p[4] for p in message["points"] if p[2] == "train/loss"]
            elif message and message["type"] == "event" and message["kind"] == "eval":
                events.append(message)
        return got, events

    for client in (early, late):
        got, events = received(client)
        assert [repr(v) for v in got] == ["0.5", "nan", "inf", "-inf"]
        assert events[0]["data"] == {"loss": "NaN"}  # event data: the documented string
