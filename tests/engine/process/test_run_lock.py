"""The run lock (engine/process/setup.py) and the live channel's socket belong to the
engine process alone: a process it forks (a batch-loader worker) neither keeps the run
locked nor the channel open once the engine is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from engine.process.setup import RunLocked, lock_run

ENGINE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from engine.process.setup import lock_run
    handle = lock_run(Path(sys.argv[1]))
    child = os.fork()
    if child == 0:  # a worker: outlives the engine for a while, as loader workers do
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
    """
)


def test_a_killed_engines_forked_worker_does_not_hold_the_run(tmp_path):
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    worker = int(engine.stdout.readline())
    try:
        with pytest.raises(RunLocked):  # the engine holds it
            lock_run(tmp_path)
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=30)
        handle = lock_run(tmp_path)  # at once, though the worker still lives
        handle.close()
    finally:
        subprocess.run(["kill", "-9", str(worker)], check=False)
        engine.kill()


LISTENER = textwrap.dedent(
    """
    import os, sys, time
    from engine.channel.connections import Connections
    connections = Connections()  # kept, as the engine keeps its channel
    info = connections.listen("forkcheck")
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, info["path"], flush=True)
    time.sleep(60)
    """
)


def test_a_killed_engines_forked_worker_does_not_keep_its_channel_open():
    """Nor its live channel's socket: a client asking a killed engine is refused at once
    rather than left waiting for a welcome (and a resumed engine then goes unheard)."""
    import socket

    engine = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    worker, path = engine.stdout.readline().split()
    try:
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=30)
        with socket.socket(socket.AF_UNIX) as client, pytest.raises(ConnectionRefusedError):
            client.connect(path)  # though the worker still lives
    finally:
        subprocess.run(["kill", "-9", worker], check=False)
        engine.kill()
