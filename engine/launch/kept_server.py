"""The engine server a target keeps for its runs: the agent that starts a run there
(engine/remote/agent.py) finds or starts it, so that every run on that machine is a fork,
ready to train, instead of a process that spends its first seconds importing torch and
transformers (engine/process/server.py); the first run waits for the server's imports.
Standard library only.

One server per user, Python and environment (the variables read at import; see
`RUN_TIME_PREFIXES` in the server), and per installed code: a reinstalled package or an
edited engine module gives another key, and the old server ends unused. It lives detached
from the login that started it and ends after `IDLE_EXIT_S` without a run
(`STAGELAB_TARGET_SERVER_IDLE_S` says otherwise). Its socket, lock and log are in
`STAGELAB_SERVER_DIR`, else `$XDG_RUNTIME_DIR/stagelab`, else `/tmp/stagelab-UID`, a folder
only its user may enter. `STAGELAB_ENGINE_SERVER=0` on the target turns it off.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import site
import socket
import stat
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from engine.launch.command import module_command

IDLE_EXIT_S = 1800.0
# How long a run waits for a server that is importing (a loaded machine) before it starts
# its engine on its own.
SERVER_WAIT_S = 120.0


def server_dir() -> Path | None:
    """The user's folder for kept servers, or None where it is not the user's alone."""
    named = os.environ.get("STAGELAB_SERVER_DIR")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(
        named or (Path(runtime) / "stagelab" if runtime else f"/tmp/stagelab-{os.getuid()}")
    )
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError:
        return None
    # Anyone who can enter it could put a socket of theirs there and run our engines.
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        return None
    return folder


def server_key(env: dict[str, str]) -> str:
    """What a server's forks depend on: this Python, the environment it imports under,
    and the installed code (package folders change when pip installs; engine modules
    when they are edited)."""
    from engine.process.server import RUN_TIME_NAMES, RUN_TIME_PREFIXES

    digest = hashlib.sha256(sys.executable.encode())
    for name in sorted(env):
        if not (name.startswith(RUN_TIME_PREFIXES) or name in RUN_TIME_NAMES):
            digest.update(f"\0{name}={env[name]}".encode())
    paths = sysconfig.get_paths()
    for folder in {paths["purelib"], paths["platlib"], site.getusersitepackages()}:
        try:
            digest.update(f"\0{folder}:{os.stat(folder).st_mtime_ns}".encode())
        except OSError:
            pass
    engine_dir = Path(__file__).resolve().parents[1]
    newest = max((p.stat().st_mtime_ns for p in engine_dir.rglob("*.py")), default=0)
    digest.update(f"\0{engine_dir}:{newest}".encode())
    return digest.hexdigest()[:16]


def server_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _starting(pid_file: Path, path: Path) -> bool:
    """A server for `path` started earlier is still importing (not answering yet)."""
    try:
        pid = int(pid_file.read_text())
        return str(path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False


def ensure_server(env: dict[str, str]) -> tuple[Path | None, str]:
    """The socket of this user's server for `env`, or None: then the run starts its engine
    on its own. Where none answers, one is started, detached, and the run waits for its
    imports and is its first fork: one import rather than two side by side, which on a
    machine of few cores takes longer than one. The second value says what happened, for
    the run's engine.log."""
    folder = server_dir()
    if folder is None:
        return None, "engine server: none kept (no private folder for it on this machine)"
    key = server_key(env)
    path, log = folder / f"engine-{key}.sock", folder / f"engine-{key}.log"
    pid_file = folder / f"engine-{key}.pid"
    with open(folder / f"engine-{key}.lock", "w") as lock:
        # Two runs started at once start one server: the second waits here for the first.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if server_answers(path):
            return path, "engine server: kept on this machine"
        server = None
        if not _starting(pid_file, path):  # else an asker that gave up waiting started it
            idle = os.environ.get("STAGELAB_TARGET_SERVER_IDLE_S") or str(IDLE_EXIT_S)
            with open(log, "ab") as out:
                server = subprocess.Popen(
                    [*module_command("engine"), "serve", "--socket", str(path)]
                    + ["--idle-exit", idle],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # The first entry of its forks' sys.path (`python -m`): no modules
                    # there, whichever working folder the run's target has.
                    cwd=folder,
                    start_new_session=True,  # outlives the login that started it
                )
            pid_file.write_text(str(server.pid))
        deadline = time.monotonic() + SERVER_WAIT_S
        while not server_answers(path):
            if server is not None and server.poll() is not None:
                return None, (
                    f"engine server: it could not start (exit {server.returncode}; its log: "
                    f"{log}); this run starts on its own"
                )
            if server is None and not _starting(pid_file, path):
                return (
                    None,
                    "engine server: the one starting here ended; this run starts on its own",
                )
            if time.monotonic() > deadline:
                return None, (
                    f"engine server: not answering after {SERVER_WAIT_S:.0f} s; this run starts on its own"
                )
            time.sleep(0.1)
        return path, "engine server: started on this machine for this run and the next"
