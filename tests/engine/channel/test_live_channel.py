"""The live channel end to end: a detached engine process, two clients following it, pause,
resume, bad peers, stop at a checkpoint, and `stagelab resume` finishing the run."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.channel.address import read_connection_file
from engine.channel.client import ChannelClient, ChannelClosed, RunFollower
from engine.channel.protocol import encode_frame
from tests.engine.process.live_kill import pause_after_checkpoint, pause_now
from tests.engine.process.test_runs import export, show, stagelab, wait_for

pytestmark = pytest.mark.slow

PLAN = """
name: live
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0}
    batch_size: 16
    max_steps: 30
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 300
    log_every_steps: 4
    eval: {every_steps: 15, metrics: [loss, accuracy, confusion_matrix]}
    checkpoint: {every_steps: 40}
"""


class Follow(threading.Thread):
    """A client following the run in the background, keeping every message."""

    def __init__(self, run_dir: Path, name: str, reconnect_for: float = 15.0):
        super().__init__(daemon=True)
        self.follower = RunFollower(run_dir, name=name)
        self.follower.connect()
        self.reconnect_for = reconnect_for
        self.messages: list = []  # typed (engine.channel.messages)

    def run(self) -> None:
        for message in self.follower.messages(reconnect_for=self.reconnect_for):
            self.messages.append(message)

    def steps(self, stage: int, key: str = "train/lr") -> list[int]:
        return [
            p[3]
            for m in list(self.messages)
            if m.type == "metrics"
            for p in m.points
            if p[1] == stage and p[2] == key
        ]


def bad_peer(info: dict, payload: bytes) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(info["path"])
    sock.settimeout(5)
    sock.sendall(payload)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()


def test_follow_pause_resume_stop_then_resume_finishes(tmp_path, data_dir):
    plan = data_dir / f"live-{tmp_path.name}.yaml"
    plan.write_text(PLAN)
    ws = tmp_path / "ws"
    run_id = stagelab(ws, "run", str(plan), "--detach").stdout.strip()
    run_dir = Path(show(ws, run_id)["run_dir"])
    wait_for(lambda: (run_dir / "channel.json").exists(), 60, "the channel to open")
    a, b = Follow(run_dir, "a"), Follow(run_dir, "b")
    a.start()
    b.start()

    wait_for(lambda: len(a.steps(1)) >= 20, 180, "stage 2 to train 20 steps")
    stagelab(ws, "pause", run_id)

    def settled() -> bool:  # no new step for 1.5 s: the step in progress ended, then held
        before = len(a.steps(1))
        time.sleep(1.5)
        return len(a.steps(1)) == before

    wait_for(settled, 60, "training to hold")  # a loaded machine delivers points late
    held = len(a.steps(1))
    assert held < 300 and show(ws, run_id)["status"] == "paused"

    info = read_connection_file(run_dir)
    with pytest.raises(ChannelClosed):
        ChannelClient(dict(info, token="wrong")).connect()
    bad_peer(info, b"GET / HTTP/1.1\r\n\r\n")
    bad_peer(info, struct.pack(">I", 1 << 30) + b"\0" * 64)
    bad_peer(info, encode_frame({"type": "hello", "version": 1, "token": info["token"]})[:9])

    stagelab(ws, "resume", run_id)  # a paused run continues in the same engine
    wait_for(lambda: len(a.steps(1)) > held + 10, 60, "training to continue")
    # Held again at once from here (a command's process, on a loaded machine, started
    # after the rest of the stage had trained); a stop ends a pause.
    pause_now(ws, run_id)
    stagelab(ws, "stop", run_id)  # waits until the engine has checkpointed and exited
    a.join(30)
    b.join(30)
    data = show(ws, run_id)
    assert data["status"] == "stopped"
    assert any(p.name.startswith("stage1-step") for p in (run_dir / "checkpoints").iterdir())
    stopped_at = data["stages"][1]["steps_done"]
    for client in (a, b):
        assert client.follower.status == "stopped"
        assert client.steps(0) == list(range(1, 31))
        assert client.steps(1) == list(range(1, stopped_at + 1))
        losses = client.steps(1, "train/loss")
        assert losses == list(range(1, len(losses) + 1))
        evals = [m for m in client.messages if m.type == "event" and m.kind == "eval"]
        assert any("confusion_matrix" in (e.data or {}) for e in evals)
        assert any(m.type == "progress" and m.total == 300 for m in client.messages)

    stagelab(ws, "resume", run_id)
    assert show(ws, run_id)["status"] == "finished"
    rows = export(ws, run_id, tmp_path / "m.csv")
    for key in ("train/lr", "train/loss"):
        steps = [step for stage, step, k, _ in rows if stage == "cls" and k == key]
        assert steps == list(range(1, 301))


def test_watch_follows_a_detached_run_to_its_end(tmp_path, data_dir):
    plan = data_dir / f"watch-{tmp_path.name}.yaml"
    plan.write_text(PLAN.replace("max_steps: 300", "max_steps: 40"))
    ws = tmp_path / "ws"
    run_id = stagelab(ws, "run", str(plan), "--detach").stdout.strip()
    # Held until watch follows it: a served engine trains the 70 steps in seconds.
    pause_now(ws, run_id)
    watch = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), "watch", run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    said = bytearray()  # stderr as it comes: tqdm's bars end in "\r", not in lines

    def pump() -> None:
        while chunk := os.read(watch.stderr.fileno(), 4096):
            said.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        wait_for(lambda: b"overall" in said, 120, "watch to follow the run")
        stagelab(ws, "resume", run_id)  # the paused engine goes on
        watch.wait(timeout=300)
    finally:
        if watch.poll() is None:
            watch.kill()
    reader.join(60)
    assert f"run {run_id} finished" in watch.stdout.read().decode()
    assert "stage 'cls' finished" in said.decode(errors="replace")
    assert show(ws, run_id)["status"] == "finished"
    again = stagelab(ws, "watch", run_id)
    assert "is not running: finished" in again.stdout


def test_a_follower_survives_an_engine_killed_and_resumed(tmp_path, data_dir):
    """SIGKILL mid-stage, `stagelab resume`: the follower reconnects to the new engine, drops
    what it rewrote, and ends with exactly the stored series (nothing missing, nothing twice)."""
    import os
    import signal

    plan = data_dir / f"kill-{tmp_path.name}.yaml"
    plan.write_text(PLAN.replace("max_steps: 300", "max_steps: 160"))
    ws = tmp_path / "ws"
    run_id = stagelab(ws, "run", str(plan), "--detach").stdout.strip()
    run_dir = Path(show(ws, run_id)["run_dir"])
    wait_for(lambda: (run_dir / "channel.json").exists(), 60, "the channel to open")
    # The resumed engine's channel opens after torch's import: 15 s (the default) is too
    # short on a loaded machine.
    follow = Follow(run_dir, "survivor", reconnect_for=300)
    follow.start()
    # Held right after stage 2's first checkpoint (step 40) until the follower is there,
    # then let go and killed at once, 120 steps before the stage's end (polling for a step
    # and then killing raced the engine, which could finish first on a loaded machine).
    pid = pause_after_checkpoint(ws, run_id, 1)
    wait_for(lambda: len(follow.steps(1)) >= 40, 180, "the follower to reach step 40")
    stagelab(ws, "resume", run_id)

    def going_again() -> bool:
        said = [m.status for m in list(follow.messages) if m.type == "status"]
        return "paused" in said and said[-1] == "running"

    wait_for(going_again, 60, "the follower to see the run going again")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 15, "status interrupted")
    stagelab(ws, "resume", run_id, "--detach")
    follow.join(300)
    assert not follow.is_alive() and follow.follower.status == "finished"

    series: dict[tuple[int, str, int], float] = {}
    for message in follow.messages:
        if message.type == "event" and message.kind == "truncated":
            cut = message.data
            for key in [
                k
                for k in series
                if k[0] > cut["stage"] or (k[0] == cut["stage"] and k[2] > cut["after_step"])
            ]:
                del series[key]
        elif message.type == "metrics":
            for _, stage, key, step, value, _ in message.points:
                assert (stage, key, step) not in series, "a point arrived twice"
                series[(stage, key, step)] = value
    stored = {
        (0 if stage == "mlm" else 1, key, step): float(value)
        for stage, step, key, value in export(ws, run_id, tmp_path / "m.csv")
    }
    mine = {k: v for k, v in series.items() if k[1] == "perf/tokens_seen" or k[1][:5] != "perf/"}
    assert mine == stored
    assert [k[2] for k in sorted(mine) if k[:2] == (1, "train/lr")] == list(range(1, 161))


def test_closing_a_follower_that_waits_for_its_engine_ends_its_reader_at_once(tmp_path):
    # The window closes the follower of a run whose engine has not started (the monitor
    # moved on) and joins its reader on the GUI thread: the reader was polling on for its
    # 15 s of reconnecting and the window froze for the join's 2 s each time.
    follower = RunFollower(tmp_path, name="closed while waiting")
    reader = threading.Thread(target=lambda: list(follower.messages()), daemon=True)
    reader.start()
    time.sleep(0.3)  # inside its wait for the engine's connection file
    clock = time.monotonic()
    follower.close()
    reader.join(timeout=5)
    assert not reader.is_alive() and time.monotonic() - clock < 1.0
