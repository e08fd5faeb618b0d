"""Kill an engine in the middle of a stage however fast the machine is.

Polling the store and then sending SIGKILL races the engine: a tiny model can finish the
stage between the poll and the kill. Instead the test listens on the run's live channel,
pauses the engine (at a step boundary) on the first checkpoint of the stage, waits until
that checkpoint's row is stored, and only then kills it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.channel.client import ChannelClient, ChannelClosed, ChannelUnavailable
from engine.store import Store, queries


def _connect(store: Store, run_id: str, deadline: float) -> ChannelClient:
    while time.monotonic() < deadline:
        run = queries.get_run(store, run_id)
        if run.run_dir:
            try:
                # A resumed run's folder may still hold the killed engine's address.
                return ChannelClient.for_run(run.run_dir, name="test kill")
            except (ChannelUnavailable, ChannelClosed, OSError, KeyError, ValueError):
                pass
        time.sleep(0.05)
    raise AssertionError(f"run {run_id}'s engine never answered on its live channel")


def _first_message(store: Store, run_id: str, deadline: float, wanted, what: str):
    """Subscribe to run `run_id`'s channel from its start (history replayed) and return, with
    the client still open, the first message `wanted(message)` accepts."""
    client = _connect(store, run_id, deadline)
    try:
        client.subscribe(after=0)
        while True:
            left = deadline - time.monotonic()
            message = client.recv(max(left, 0.01))
            if left <= 0:
                raise AssertionError(f"{what} never came")
            if message is not None and wanted(message):
                return client, message
    except BaseException:
        client.close()
        raise


def pause_after_checkpoint(
    ws: Path, run_id: str, stage: int, timeout: float = 300, beyond: int = 0
) -> int:
    """Hold run `run_id` right after the first checkpoint of stage `stage` past step `beyond`
    (a resumed engine's channel replays the checkpoints before its start) and return its
    engine's pid; the checkpoint's row is stored by then."""
    store = Store.open(ws / "stagelab.db")
    deadline = time.monotonic() + timeout

    def checkpoint(message: dict) -> bool:
        return (
            message.get("type") == "event"
            and message.get("kind") == "checkpoint"
            and message.get("stage") == stage
            and message["data"]["step"] > beyond
        )

    what = f"a checkpoint of stage {stage} within {timeout:.0f} s"
    client, message = _first_message(store, run_id, deadline, checkpoint, what)
    try:
        step = message["data"]["step"]
        client.control("pause")
    finally:
        client.close()

    def stored() -> bool:
        ckpt = queries.latest_checkpoint(store, run_id)
        return ckpt is not None and ckpt.stage_idx == stage and ckpt.step >= step

    while not stored():
        assert time.monotonic() < deadline, f"the checkpoint at step {step} was never stored"
        time.sleep(0.05)
    return queries.get_run(store, run_id).pid


def trained_past(ws: Path, run_id: str, stage: int, step: int, timeout: float = 60) -> None:
    """Return once run `run_id`'s engine has sent a point of stage `stage` beyond `step`:
    heard on its live channel at once, where the store has it only after its write batch."""
    store = Store.open(ws / "stagelab.db")

    def past(message: dict) -> bool:  # a point is [seq, stage, key, step, value, wall]
        points = message["points"] if message.get("type") == "metrics" else ()
        return any(p[1] == stage and p[3] > step for p in points)

    what = f"a step of stage {stage} after {step} within {timeout:.0f} s"
    client, _ = _first_message(store, run_id, time.monotonic() + timeout, past, what)
    client.close()


def pause_now(ws: Path, run_id: str, timeout: float = 300) -> None:
    """Hold run `run_id` at its next step boundary, as soon as its engine answers (polled in
    this process: a served engine trains a short test plan in seconds, faster than a CLI
    process can start to ask), and wait until the store says `paused`."""
    store = Store.open(ws / "stagelab.db")
    deadline = time.monotonic() + timeout
    client = _connect(store, run_id, deadline)
    try:
        client.control("pause")
    finally:
        client.close()
    while queries.get_run(store, run_id).status != "paused":
        assert time.monotonic() < deadline, f"run {run_id} was never paused"
        time.sleep(0.05)


def first_run_id(ws: Path, timeout: float = 120) -> str:
    """The id of the first run recorded in workspace `ws`, as soon as it is recorded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (ws / "stagelab.db").exists():
            for run in queries.list_runs(Store.open(ws / "stagelab.db")):
                return run.id
        time.sleep(0.05)
    raise AssertionError(f"no run was recorded in {ws}")


def kill_mid_stage(ws: Path, run_id: str, stage: int, timeout: float = 300) -> None:
    """SIGKILL run `run_id`'s engine while stage `stage` runs, after one of its checkpoints."""
    pid = pause_after_checkpoint(ws, run_id, stage, timeout)
    os.kill(pid, signal.SIGKILL)
    store = Store.open(ws / "stagelab.db")
    assert queries.list_stages(store, run_id)[stage].status == "running"


def resume_and_kill_mid_stage(ws: Path, run_id: str, stage: int, timeout: float = 300) -> None:
    """`stagelab resume RUN --detach`, then `kill_mid_stage`, the channel watched while the
    command still runs: a forked engine can train a short plan to its end before a command
    started after the resume could ask (seen on a loaded two-core machine)."""
    command = [sys.executable, "-m", "engine.cli", "--workspace", str(ws), "resume", run_id]
    resume = subprocess.Popen(
        [*command, "--detach"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        kill_mid_stage(ws, run_id, stage, timeout)
    finally:
        _, errors = resume.communicate(timeout=120)
    assert resume.returncode == 0, errors
