"""The mirror's transport through a target's shell (OpenSSH, or this machine for slurm://):
the remote engine's Unix socket forwarded to an owner-only local socket (no TCP port is
opened on the target), and pulls by the record command run there.

The forward is an ssh process of its own: killing it (a dropped connection) only ends the
live channel; the mirror pulls what it missed through the shared connection and forwards
again.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from engine.channel.address import ChannelUnavailable, private_socket_dir
from engine.remote.mirror import TransportError, record_command
from engine.remote.shell import Shell, ShellError
from engine.store.workspace import Workspace

FORWARD_WAIT_S = 20.0


class ShellTransport:
    """A run in `workspace` on a target, reached through `shell`.

    Args:
        shell: the target's shell.
        python: the target's Python with this Stagelab.
        env: environment its commands need (PYTHONPATH of an installed wheel).
        workspace: the target's workspace (absolute there).
        run_id: the run's id there.
    """

    def __init__(self, shell: Shell, python: str, env: dict[str, str], workspace: str, run_id: str):
        self.shell, self.python, self.env = shell, python, dict(env)
        self.workspace, self.run_id = workspace, run_id
        self.forwarder: subprocess.Popen | None = None
        self.local_socket, self.pid_file = forward_paths(run_id)

    def _command(self, argv: list[str]) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{env + ' ' if env else ''}{shlex.join(argv)}"

    def pull(self, after: int) -> list[str]:
        cmd = record_command(self.python, self.workspace, self.run_id, after)
        try:
            done = self.shell.script(self._command(cmd), timeout=600)
        except ShellError as exc:
            raise TransportError(str(exc)) from None
        if done.returncode not in (0, 2):
            said = done.stderr.decode(errors="replace").strip()
            raise TransportError(f"the record command failed there: {said[-300:]}")
        return done.stdout.decode().splitlines()

    def connect(self) -> dict[str, Any]:
        remote_file = f"{self.workspace}/runs/{self.run_id}/channel.json"
        try:
            done = self.shell.run(["cat", remote_file], timeout=60)
        except ShellError as exc:
            raise TransportError(str(exc)) from None
        if done.returncode != 0:
            raise ChannelUnavailable("the run's engine there is not running (no live channel)")
        try:
            info = json.loads(done.stdout.decode())
        except ValueError:
            raise ChannelUnavailable("the run's channel file there is being written") from None
        if info.get("transport") != "unix":
            raise TransportError("the engine there listens on TCP; the mirror forwards sockets")
        self._forward(info["path"])
        return {**info, "path": str(self.local_socket)}

    def _forward(self, remote_socket: str) -> None:
        _end_left_forward(self.pid_file, self.local_socket)  # before its pid file goes
        self._stop_forward()
        self.forwarder = self.shell.forward(str(self.local_socket), remote_socket)
        self.pid_file.write_text(str(self.forwarder.pid), encoding="ascii")
        deadline = time.monotonic() + FORWARD_WAIT_S
        while not Path(self.local_socket).exists():
            if self.forwarder.poll() is not None:
                said = b""
                if self.forwarder.stderr is not None:
                    said = self.forwarder.stderr.read() or b""
                raise TransportError(
                    f"the forward of the engine's socket failed: {said.decode(errors='replace')}"
                )
            if time.monotonic() > deadline:
                self._stop_forward()
                raise TransportError("the forward of the engine's socket did not come up")
            time.sleep(0.05)

    def _stop_forward(self) -> None:
        proc, self.forwarder = self.forwarder, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        Path(self.local_socket).unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)

    def close(self) -> None:
        self._stop_forward()


def forward_paths(run_id: str) -> tuple[Path, Path]:
    """The local socket of a run's forward and the pid file of its ssh process."""
    local_socket = private_socket_dir() / f"mirror-{run_id[:16]}.sock"
    return local_socket, local_socket.with_suffix(".pid")


def end_left_forward(run_id: str) -> None:
    """End the forward of a mirror of `run_id` that was killed: the new mirror may never
    forward again (a run that ended meanwhile is only pulled), and the ssh process would
    listen on forever. Call it holding the run's mirror lock."""
    local_socket, pid_file = forward_paths(run_id)
    _end_left_forward(pid_file, local_socket)
    pid_file.unlink(missing_ok=True)


def _end_left_forward(pid_file: Path, local_socket: Path) -> None:
    """End the forward a killed mirror left running (its own session outlives it)."""
    try:
        pid = int(pid_file.read_text(encoding="ascii"))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(local_socket).encode() in cmdline:  # still that forward, not a reused pid
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def shell_transport(ws: Workspace, run: Any) -> ShellTransport:
    """The transport of a run on a stored target (its placement says where there)."""
    from engine.remote.shell import shell_for
    from engine.remote.targets import get_target
    from engine.store import Store

    target = get_target(Store.open(ws.db_path), run.target)
    placement = run.placement or {}
    if not placement.get("remote_workspace"):
        raise ValueError(f"run {run.id} does not say where it trains on '{target.name}'")
    return ShellTransport(
        shell_for(target),
        placement.get("remote_python") or target.python,
        placement.get("remote_env") or {},
        placement["remote_workspace"],
        placement.get("remote_run_id") or run.id,
    )
