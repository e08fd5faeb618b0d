"""Engines forked by the engine server (engine/process/server.py) instead of started as
fresh processes: the same engine, minus the ~6 s of CPU a fresh one spends importing torch
and transformers before its first step. Standard library only (the window imports it).

A launcher asks the server named by `STAGELAB_ENGINE_SERVER` (its socket) and gets a
`ServedEngine`, which answers what the launchers ask of a `subprocess.Popen` (pid, poll,
wait, signals); without a server, or when it refuses (another Python, an environment it
was not started with), the launcher starts the engine itself, as always.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.launch.command import module_command

# The server's socket, for every launcher in this process and its children.
SERVER_ENV = "STAGELAB_ENGINE_SERVER"
# Its value that turns the server off (no launcher asks, none is started).
OFF = "0"
# Exit code of an engine whose server ended before it did (its real code is lost).
LOST = 255


class ServedEngine:
    """An engine process forked by the server, with Popen's pid, returncode, poll, wait,
    send_signal, terminate and kill. Its exit code comes over the server connection;
    signals go through a pidfd, so they never reach another process that reused the pid."""

    stdin = stdout = stderr = None

    def __init__(self, conn: socket.socket, pid: int, args: list[str], received: bytes = b""):
        self.args, self.pid, self.returncode = args, pid, None
        # `received`: what the server sent after the pid line, read with it.
        self._conn, self._buffer = conn, received
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # ended (and collected) already: its code is on the way
            self._pidfd = None

    def poll(self) -> int | None:
        return self._collect(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._collect(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _collect(self, timeout: float | None) -> int | None:
        """The exit code once the server has sent it, waiting up to `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if b"\n" in self._buffer:
                self.returncode = int(json.loads(self._buffer.split(b"\n")[0])["exit"])
                break
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not select.select([self._conn], [], [], left)[0]:
                return None
            chunk = self._conn.recv(4096)
            if not chunk:  # the server ended first: wait for the engine itself
                self._wait_pidfd(deadline)
                if self.returncode is None:
                    return None
                break
            self._buffer += chunk
        self._close()
        return self.returncode

    def _wait_pidfd(self, deadline: float | None) -> None:
        left = None if deadline is None else max(deadline - time.monotonic(), 0)
        if self._pidfd is None or select.select([self._pidfd], [], [], left)[0]:
            self.returncode = LOST

    def _close(self) -> None:
        self._conn.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __del__(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)


def start_served(
    argv: list[str],
    env: dict[str, str],
    log_path: Path | None,
    nproc: int = 1,
    module: str = "engine",
) -> ServedEngine | None:
    """`python -m <module> <argv>` forked by the server, with `env`, its output appended to
    `log_path` (`nproc` > 1: that many ranks, as torchrun --standalone would start them), or,
    without a log, with this process's standard streams (a playground worker); None where
    there is no server or it refused (a line in the log, or on stderr, says why)."""
    path = os.environ.get(SERVER_ENV)
    if not path or path == OFF or getattr(sys, "frozen", False):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    request = {
        "argv": argv,
        "env": env,
        "cwd": os.getcwd(),
        "log": None if log_path is None else str(log_path),
        "python": sys.executable,
        "nproc": nproc,
        "module": module,
    }
    data = (json.dumps(request) + "\n").encode()
    try:
        conn.connect(path)
        if log_path is None:  # the streams travel with the request's first bytes
            data = data[socket.send_fds(conn, [data], [0, 1, 2]) :]
        conn.sendall(data)
        line, rest = first_line(conn)
        reply = json.loads(line or b"{}")
    except (OSError, ValueError) as err:
        conn.close()
        if log_path is None:  # a worker's stderr, read only if it fails: say why anyway
            sys.stderr.write(f"engine server: not reached ({err}); started on its own\n")
        return None  # not running (yet): a process of its own
    if "pid" not in reply:
        conn.close()
        line = f"engine server: {reply.get('refused', 'no answer')}; started on its own\n"
        if log_path is None:
            sys.stderr.write(line)
        else:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(line)
        return None
    conn.settimeout(None)
    return ServedEngine(conn, int(reply["pid"]), [*module_command(module), *argv], rest)


def first_line(conn: socket.socket) -> tuple[bytes, bytes]:
    """The server's first line and what came after it in the same reads: a buffered reader
    (`makefile`) would keep the second line, the exit code of an engine that ended at once,
    and drop it with itself."""
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    line, _, rest = data.partition(b"\n")
    return line, rest


def start_server(socket_path: Path, log_path: Path | None = None) -> subprocess.Popen:
    """Start an engine server on `socket_path`, its messages to `log_path` or this process's
    stderr (it ends when the returned process's stdin closes, or with it); launchers use it once it prints `ready` and `SERVER_ENV` names it.
    Until then they start engines as processes of their own."""
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - None: this process's
    try:
        return subprocess.Popen(
            [*module_command("engine"), "serve", "--socket", str(socket_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    finally:
        if log_path:
            log.close()


@contextmanager
def engine_server_kept(log_path: Path | None = None) -> Iterator[subprocess.Popen | None]:
    """An engine server for this process's launchers while the block runs (the sweep
    process, the queue runner, the window), unless the environment names one already
    or turns it off (`STAGELAB_ENGINE_SERVER=0`). Engines still training when the block
    ends go on; the server's memory (an engine's imports, ~0.7 GB) is given back. Yields
    the server's process (None when none was started)."""
    if os.environ.get(SERVER_ENV) or getattr(sys, "frozen", False):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="stagelab-"))  # short: socket paths stop at 107 bytes
    server = start_server(folder / "engine.sock", log_path)
    os.environ[SERVER_ENV] = str(folder / "engine.sock")
    try:
        yield server
    finally:
        os.environ.pop(SERVER_ENV, None)
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
