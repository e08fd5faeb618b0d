"""The engine server: one process that has imported torch, transformers and the engine
once, and forks a ready engine for each run it is asked for (`python -m engine serve`).

An engine process spends most of a short run importing (~6 s of CPU on a laptop core
before its first step); a fork of this process starts training at once. The window, the
sweep process and the test suite start a server and hand its socket to the launchers in
the environment (`STAGELAB_ENGINE_SERVER`, engine.launch.served); without one, or for a
request it cannot serve as a fresh process would run it, the engine starts as a process of
its own as always. A run of several processes on this machine (`nproc` > 1) is one fork
that forks its ranks, as torchrun would start them (engine/process/group.py).

Protocol (one Unix socket, one connection per engine, JSON lines):
  → {"argv": [...], "env": {...}, "cwd": "...", "log": "...", "python": "...", "nproc": N}
    and "module": "engine.predict" for a playground worker (`python -m engine.predict
    serve`), sent with the launcher's standard input, output and error (SCM_RIGHTS), which
    the fork takes in place of the log (engine/launch/served_exec.py)
  ← {"pid": N} then, when that engine exits, {"exit": code} (a signal as -number)
  ← {"refused": "why"} when the request cannot be served (the launcher starts it itself)

The server stays single-threaded (a fork copies only the forking thread, and no lock may be
held by another), never touches a GPU or a database, and ends when its standard input
closes: the process that started it went away; or, kept by a target's agent
(`--idle-exit S`, engine/launch/kept_server.py), once it has had no request and no running
engine for S seconds.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

# Variables a fork may differ in from the server: none of them is read when a module is
# imported, so the forked engine, which takes the asked-for environment, behaves as a fresh
# process started with it. Anything else (HF_*, CUDA_*, OMP_*, PYTHON* …) may have been read
# at import: a request that changes it is refused and starts cold.
# SSH_* and XDG_SESSION_ID: each login to a target has its own, and the server the target's
# agent keeps serves every login's runs (engine/launch/kept_server.py).
RUN_TIME_PREFIXES = ("STAGELAB_", "PYTEST_", "SSH_")
RUN_TIME_NAMES = {"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "TERM", "XDG_SESSION_ID"}
# Read when a compiled stage compiles, not at import; torch sets the first in the
# environment of any process that compiled (a launcher that did lost its forks: every run
# the test workers started after a compile test imported torch again).
RUN_TIME_NAMES |= {"TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"}
# Set by threadpoolctl and scikit-learn when imported, and read only when a second OpenMP
# runtime loads, which a fork of a loaded server never does: a launcher that imported them
# after its server started lost its forks (seen in a test worker: runs started cold).
RUN_TIME_NAMES |= {"KMP_DUPLICATE_LIB_OK"}

# Set in a forked engine: the server's pid.
FORKED_ENV = "STAGELAB_FORKED_BY"

# The models' modules of the built-in families, and peft (which an engine imports only for
# a stage with adapters): imported once here, not by every engine.
PRELOADED = (
    "transformers.models.bert.modeling_bert",
    "transformers.models.gpt2.modeling_gpt2",
    "transformers.models.llama.modeling_llama",
    "peft",
)


# What a fork may become: `python -m MODULE FIRST-ARGUMENT …`.
SERVED = {"engine": "run", "engine.predict": "serve"}


@dataclass(frozen=True)
class Job:
    """What a forked engine runs: `python -m <module> <argv>` in `cwd` with `env`, its output
    appended to `log`, or with the launcher's standard streams `stdio` (three descriptors)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: str | None
    nproc: int = 1  # processes of the run on this machine (engine/process/group.py)
    module: str = "engine"
    stdio: tuple[int, ...] = ()


def refusal(request: dict, env: dict[str, str]) -> str | None:
    """Why the request cannot run as a fork of this server, or None."""
    if request.get("python") != sys.executable:
        return f"another Python ({request.get('python')})"
    wanted = request.get("env") or {}
    for name in set(wanted) ^ set(env) | {k for k in wanted if wanted[k] != env.get(k)}:
        if not (name.startswith(RUN_TIME_PREFIXES) or name in RUN_TIME_NAMES):
            return f"environment variable {name} differs from the server's"
    module = request.get("module", "engine")
    if module not in SERVED or not request.get("argv") or request["argv"][0] != SERVED[module]:
        return "only `python -m engine run` and `python -m engine.predict serve` are served"
    if module != "engine" and (request.get("nproc", 1) != 1 or not request.get("stdio")):
        return "a playground worker is one process that takes its launcher's streams"
    if not isinstance(request.get("nproc", 1), int) or request.get("nproc", 1) < 1:
        return f"not a number of processes: {request.get('nproc')!r}"
    return None


def preload() -> None:
    """Import what every engine run imports, so that a fork skips it."""
    import importlib

    # As `python -m engine run` sets before datasets is imported.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import engine.process.runner  # noqa: F401

    for name in PRELOADED:
        importlib.import_module(name)
    # Every save_pretrained builds transformers' table of checkpoint renamings once per
    # process (~1,200 regular expressions, ~0.3 s): built here, every fork has it.
    mapping = importlib.import_module("transformers.conversion_mapping")
    if hasattr(mapping, "get_checkpoint_conversion_mapping"):
        mapping.get_checkpoint_conversion_mapping("bert")


def serve(socket_path: Path, env: dict[str, str], idle_exit: float | None = None) -> Job | None:
    """Answer requests until standard input closes (returns None), or, in a forked child,
    return the job it is to run. `env`: the environment the server was started with.
    `idle_exit`: standard input is not watched; the server ends after that many seconds
    without a request while none of its engines runs."""
    server = os.getpid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    socket_path.unlink(missing_ok=True)
    listener.bind(str(socket_path))
    listener.listen(16)
    # A child's end interrupts the wait through this pipe (signal.set_wakeup_fd).
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "listen")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    if idle_exit is None:
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    engines: dict[int, socket.socket] = {}  # pid → the connection that asked for it
    print("ready", flush=True)
    try:
        while True:
            events = selector.select(None if idle_exit is None or engines else idle_exit)
            if not events and not engines:
                return None  # idle: a later request starts a new server
            for key, _ in events:
                if key.data == "stdin" and not os.read(sys.stdin.fileno(), 4096):
                    return None
                if key.data == "child":
                    _drain(wake_r)
                    _reap(engines)
                if key.data == "listen":
                    conn, _ = listener.accept()
                    job = _answer(conn, env, engines)
                    if job is not None:  # the forked child: leave the server behind
                        selector.close()
                        listener.close()
                        for other in engines.values():
                            other.close()
                        os.close(wake_r)
                        os.close(wake_w)
                        return job
    finally:
        if os.getpid() == server:
            socket_path.unlink(missing_ok=True)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """One JSON line and the descriptors that came with it."""
    data, fds = b"", []
    while b"\n" not in data:
        chunk, got, _flags, _address = socket.recv_fds(conn, 65536, 3)
        fds += got
        if not chunk:
            break
        data += chunk
    return json.loads(data.split(b"\n", 1)[0] or b"{}"), fds


def _answer(conn: socket.socket, env: dict[str, str], engines: dict) -> Job | None:
    """Read one request; fork its engine (returning the job in the child) or refuse."""
    fds: list[int] = []
    try:
        conn.settimeout(10)
        request, fds = _read_request(conn)
        why = refusal(dict(request, stdio=len(fds) == 3), env)
    except (OSError, ValueError) as err:
        why, request = f"unreadable request ({err})", {}
    if why is not None:
        _send(conn, {"refused": why})
        conn.close()
        for fd in fds:
            os.close(fd)
        return None
    job = Job(
        list(request["argv"]),
        dict(request["env"]),
        request["cwd"],
        request.get("log"),
        request.get("nproc", 1),
        request.get("module", "engine"),
        tuple(fds),
    )
    pid = os.fork()
    if pid == 0:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        conn.close()
        return job
    for fd in fds:  # the fork has them
        os.close(fd)
    engines[pid] = conn
    _send(conn, {"pid": pid})
    return None


def _reap(engines: dict[int, socket.socket]) -> None:
    """Collect every ended engine and tell its launcher the exit code."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = engines.pop(pid, None)
        if conn is not None:
            _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
            conn.close()


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        pass  # the launcher went away; the engine runs on, recorded in the store


def become(job: Job) -> None:
    """Turn the forked child into the engine process a launcher would have started: its own
    session (closing the window or the terminal does not stop it), the asked-for directory
    and environment, its output appended to the run's engine.log (a playground worker:
    its launcher's standard streams)."""
    os.setsid()
    os.chdir(job.cwd)
    os.environ.clear()
    os.environ.update(job.env)
    os.environ[FORKED_ENV] = str(os.getppid())  # the run's environment record says so
    sys.stdout.flush()
    sys.stderr.flush()
    if job.stdio:
        streams = list(job.stdio)
    else:
        log = os.open(job.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        streams = [os.open(os.devnull, os.O_RDONLY), log, log]
    for target, fd in enumerate(streams):
        os.dup2(fd, target)
    for fd in set(streams):
        os.close(fd)
    # The server ignored nothing; the engine installs its own handlers when it starts.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [sys.argv[0], *job.argv]


def serve_main(socket_path: Path, idle_exit: float | None = None) -> Job | None:
    """`python -m engine serve --socket PATH`: None once the server ends; in a fork, its
    job, which engine.__main__ then runs as `python -m <module>` would (in a rank of a run
    of several processes; their group process exits once they have)."""
    env = dict(os.environ)  # before preload sets its own
    preload()
    # The imported objects live as long as the server and every fork: frozen, the forks'
    # collections (and the one at each engine's exit, ~1.3 s) never walk them, and the
    # collector never writes to their pages, which stay shared with the server.
    gc.freeze()
    job = serve(Path(socket_path), env, idle_exit)
    if job is None:
        return None
    become(job)
    if job.nproc > 1:
        from engine.process.group import start_ranks

        code = start_ranks(job.nproc)
        if code is not None:  # the group process, once its ranks ended
            sys.exit(code)
    return job
