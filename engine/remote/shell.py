"""Running commands on a target: `SshShell` through the OpenSSH client (the user's
~/.ssh/config, agent and keys; one ControlMaster login serves a run), `LocalShell` on this
machine (a Slurm login node). Nothing home-made: host keys are always checked, no password
is stored (a prompt passes through to the terminal), sockets stay owner-only.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.remote.targets import Target

CHUNK = 1 << 20
Progress = Callable[[int], None]  # bytes sent so far of the current file


class ShellError(RuntimeError):
    """The target could not be reached or refused us; the message is one sentence that says
    what to do."""


class Shell:
    """Commands and files on a target."""

    name = "target"

    def run(
        self, argv: list[str], *, input: bytes | None = None, timeout: float | None = 120
    ) -> subprocess.CompletedProcess:
        """Run argv there; stdout/stderr are bytes. Raises ShellError when unreachable."""
        raise NotImplementedError

    def script(self, text: str, *, input: bytes | None = None, timeout: float | None = 120):
        """Run a POSIX sh script there (whatever the login shell is)."""
        return self.run(["sh", "-c", text], input=input, timeout=timeout)

    def put(self, local: Path, remote: str, progress: Progress | None = None) -> None:
        """Copy a file there; it appears whole at `remote` or not at all."""
        raise NotImplementedError

    def forward(self, local_socket: str, remote_socket: str) -> subprocess.Popen:
        """A process that serves `remote_socket` (a Unix socket there) at `local_socket`."""
        raise NotImplementedError

    def close(self) -> None:
        """End the shared connection, if any."""


class LocalShell(Shell):
    """This machine (slurm:// on a login node)."""

    name = "this machine"

    def run(self, argv, *, input=None, timeout=120):
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout)

    def put(self, local, remote, progress=None):
        target = Path(os.path.expanduser(remote))
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.part.{os.getpid()}")
        try:
            with open(local, "rb") as src, open(part, "wb") as dst:
                done = 0
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done)
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)

    def forward(self, local_socket, remote_socket):
        # The socket is here already: a link stands in for the forward.
        Path(local_socket).unlink(missing_ok=True)
        os.symlink(remote_socket, local_socket)
        return subprocess.Popen(["sleep", "infinity"], start_new_session=True)


def control_dir() -> Path:
    """The owner-only folder of this user's ControlMaster sockets.

    Raises:
        ShellError: it exists but is not ours alone.
    """
    path = Path(tempfile.gettempdir()) / f"stagelab-ssh-{os.getuid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ShellError(
            f"{path} must be a folder only you can use (mode 700); remove it and try again"
        )
    return path


def ssh_failure(target: Target, stderr: str) -> str:
    """One sentence for an OpenSSH failure (exit 255), from what ssh printed."""
    said = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = said[-1] if said else "no message"
    host, port = target.host, target.port or 22
    if (
        "Host key verification failed" in stderr
        or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr
    ):
        seen = f"[{host}]:{port}" if target.port else str(host)
        return (
            f"the host key of {seen} is not known (or has changed), so target '{target.name}' "
            f"is refused; trust it after comparing fingerprints: run `ssh-keyscan -p {port} {host}`, "
            "check the key against the server's (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
            f"there) and add the line to ~/.ssh/known_hosts, or connect once with `ssh -p {port} "
            f"{target.where.split(':')[0]}` and answer yes after comparing"
        )
    if "Permission denied" in stderr or "Too many authentication failures" in stderr:
        return (
            f"could not log in to {target.where} ({last}); load your key into the agent "
            f"(ssh-add), install it there (ssh-copy-id), or name it with --identity"
        )
    return f"target '{target.name}' ({target.where}) cannot be reached: {last}"


class SshShell(Shell):
    """A target reached with the OpenSSH client binary."""

    def __init__(self, target: Target):
        self.target = target
        self.name = target.where
        self._ssh = shutil.which("ssh")

    def base(self, shared: bool = True) -> list[str]:
        """`ssh` and its options, without the destination; `shared` through the
        ControlMaster connection."""
        if self._ssh is None:
            raise ShellError(
                "the OpenSSH client (ssh) is not installed here; install openssh-client"
            )
        t = self.target
        # The first value of an option wins: strict host keys come before the user's options,
        # the connection defaults after them (the user's win there).
        cmd = [self._ssh, "-o", "StrictHostKeyChecking=yes"]
        for option in t.ssh_options:
            cmd += ["-o", option]
        if shared:
            # One master per set of options, not per user@host:port (%C): a session through
            # another target's master would run with that target's options (its SetEnv,
            # its key), as OpenSSH applies the master's, not the client's.
            key = hashlib.sha256(repr((t.ssh_options, t.identity)).encode()).hexdigest()[:10]
            cmd += ["-o", f"ControlPath={control_dir()}/{key}-%C", "-o", "ControlMaster=auto"]
            cmd += ["-o", "ControlPersist=300"]
        else:
            cmd += ["-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "BatchMode=yes"]
        cmd += [
            "-o", "ConnectTimeout=20",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
        ]  # fmt: skip
        if t.identity:
            cmd += ["-i", os.path.expanduser(t.identity)]
        if t.port:
            cmd += ["-p", str(t.port)]
        if t.user:
            cmd += ["-l", t.user]
        return cmd

    def _call(self, argv: list[str], extra: list[str], input, timeout):
        cmd = [*self.base(), *extra, "--", str(self.target.host), shlex.join(argv)]
        try:
            done = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ShellError(
                f"target '{self.target.name}' ({self.target.where}) did not answer within "
                f"{timeout:.0f} s; check that it is up and reachable"
            ) from None
        if done.returncode == 255:
            raise ShellError(ssh_failure(self.target, done.stderr.decode(errors="replace")))
        return done

    def run(self, argv, *, input=None, timeout=120):
        return self._call(argv, [], input, timeout)

    def put(self, local, remote, progress=None):
        script = (
            'set -e; d=$(dirname "$1"); mkdir -p "$d"; t="$1.part.$$"; '
            'trap \'rm -f "$t"\' EXIT; cat > "$t"; mv "$t" "$1"; trap - EXIT'
        )
        cmd = [
            *self.base(),
            "--",
            str(self.target.host),
            shlex.join(["sh", "-c", script, "put", remote]),
        ]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        done = 0
        try:
            with open(local, "rb") as src:
                while chunk := src.read(CHUNK):
                    proc.stdin.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()  # the part file is removed there when cat's input breaks
            proc.wait()
            raise
        err = proc.stderr.read().decode(errors="replace")
        code = proc.wait()
        if code == 255:
            raise ShellError(ssh_failure(self.target, err))
        if code != 0:
            raise ShellError(
                f"copying {local.name} to {self.target.where}:{remote} failed: {err.strip()[-300:]}"
            )

    def forward(self, local_socket, remote_socket):
        # A connection of its own: through the ControlMaster the forward would belong to
        # the master and outlive this process. It cannot prompt (it runs detached), so it
        # needs a key or the agent; BatchMode makes it fail at once instead of hanging.
        cmd = [
            *self.base(shared=False),
            "-N",
            "-o", "ExitOnForwardFailure=yes",
            "-o", "StreamLocalBindUnlink=yes",
            "-L", f"{local_socket}:{remote_socket}",
            "--", str(self.target.host),
        ]  # fmt: skip
        # The forwarded socket is created with our umask: owner-only.
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: os.umask(0o077),
        )

    def close(self):
        if self._ssh is None:
            return
        subprocess.run(
            [*self.base(), "-O", "exit", "--", str(self.target.host)],
            capture_output=True,
            timeout=20,
        )


def shell_for(target: Target) -> Shell:
    """The shell of a target: OpenSSH for ssh:// and slurm+ssh://, this machine for slurm://."""
    return SshShell(target) if target.over_ssh else LocalShell()
