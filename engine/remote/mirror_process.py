"""The detached mirror process of a run that trains on a target, one per run:
`python -m engine mirror --workspace WS --run ID` (engine/remote/mirror.py does the work).

`start_mirror` starts it unless one holds the run's `mirror.lock` (the kernel drops the
lock when the process dies, even by SIGKILL). `stagelab watch`, the window's monitor and
`run --target` call it; a second call while one runs does nothing.
"""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.channel.address import CONNECTION_FILE
from engine.launch.runs import module_command, start_in_own_session
from engine.store.status import ENDED, RunStatus
from engine.store.workspace import Workspace

LOCK_FILE = "mirror.lock"
LOG_FILE = "mirror.log"


class NotMirrored(RuntimeError):
    """The run trains on this machine, or its record lacks where it trains."""


def _try_lock(run_dir: Path) -> Any:
    """The held lock file, or None when another mirror holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held by the caller
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def mirror_running(run_dir: Path) -> bool:
    """Whether a mirror process holds the run now."""
    handle = _try_lock(run_dir)
    if handle is None:
        return True
    handle.close()
    return False


def is_mirrored(run: Any) -> bool:
    """Whether the run trains elsewhere, so that a mirror records it here."""
    placement = getattr(run, "placement", None) or {}
    return bool(getattr(run, "target", None) or placement.get("remote_workspace"))


def start_mirror(workspace: Workspace | str | Path, run_id: str) -> subprocess.Popen | None:
    """Start the detached mirror of a run that trains on a target; None when one is
    running already."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    run_dir = ws.run_dir(run_id)
    if mirror_running(run_dir):
        return None
    # Left by a mirror that was killed: it points at a forward that is gone.
    (run_dir / CONNECTION_FILE).unlink(missing_ok=True)
    cmd = [*module_command("engine"), "mirror", "--workspace", str(ws.root), "--run", run_id]
    return start_in_own_session(cmd, run_dir / LOG_FILE)


def attach(run: Any, wait: float = 0.0, say: Callable[[str], None] | None = None) -> bool:
    """Re-attach to a run that trains on a target: start its mirror when none runs (it
    back-fills what was missed, then follows live) and wait up to `wait` seconds for the
    local connection file, and for as long as the run is queued there (a Slurm queue may
    take hours; `say` tells so once). True when the file is there; False for a run of this
    machine, an ended one, or when the mirror found the run ended."""
    if not is_mirrored(run) or run.status in ENDED:
        return False
    run_dir = Path(run.run_dir)
    proc = start_mirror(run_dir.parent.parent, run.id)
    if wait <= 0:
        return False
    from engine.store import Store, queries

    store = Store.open(run_dir.parent.parent / "stagelab.db")
    deadline, told = time.monotonic() + wait, False
    while not wait_for_channel(run_dir, proc, 1.0):
        if proc is not None and proc.poll() is not None:
            proc = None  # it found another mirror at work (or the run's end)
            time.sleep(1.0)
        if proc is None and not mirror_running(run_dir):
            return (run_dir / CONNECTION_FILE).exists()
        status = queries.get_run(store, run.id).status
        if status != RunStatus.QUEUED and time.monotonic() > deadline:
            return False
        if status == RunStatus.QUEUED and say is not None and not told:
            told = True
            say(f"run {run.id} is queued on its target; waiting for its engine to start")
    return True


def wait_until_mirrored(run: Any, timeout: float = 30.0) -> None:
    """After a mirrored run's engine said goodbye: wait (up to `timeout` s) until its
    mirror has stored the end and let go, so what is read next is the final record."""
    if not is_mirrored(run):
        return
    deadline = time.monotonic() + timeout
    while mirror_running(Path(run.run_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_for_channel(run_dir: Path, proc: subprocess.Popen | None, timeout: float) -> bool:
    """Wait until the mirror wrote the run's local connection file; False when the time
    is up or the mirror ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (Path(run_dir) / CONNECTION_FILE).exists():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def transport_for(ws: Workspace, run: Any) -> Any:
    """How the mirror reaches the run: a run of another workspace on this machine
    (placement's remote_workspace, no target), or its target's shell.

    Raises:
        NotMirrored: the run trains here, or its record does not say where.
    """
    from engine.remote.mirror import LocalTransport

    placement = run.placement or {}
    remote_id = placement.get("remote_run_id") or run.id
    if run.target is None:
        if not placement.get("remote_workspace"):
            raise NotMirrored(f"run {run.id} trains on this machine; nothing to mirror")
        return LocalTransport(placement["remote_workspace"], remote_id)
    from engine.remote.mirror_shell import shell_transport
    from engine.remote.slurm_runs import job_aware
    from engine.store import Store

    # A Slurm run's mirror also keeps the job's state and reason here.
    return job_aware(shell_transport(ws, run), Store.open(ws.db_path), run)


def mirror_main(workspace: Path, run_id: str) -> int:
    """The mirror process: 0 when the run ended or another mirror has it, 1 when it gave
    up on the target, 2 when the run cannot be mirrored."""
    from engine.remote.mirror import Mirror, percentile
    from engine.store import Store, queries

    ws = Workspace.open(workspace)
    store = Store.open(ws.db_path)
    try:
        run = queries.get_run(store, run_id)
        transport = transport_for(ws, run)
    except (queries.NotFound, queries.Ambiguous, NotMirrored, ValueError) as exc:
        print(f"stagelab mirror: {exc}", file=sys.stderr)
        return 2
    run_dir = ws.run_dir(run.id)
    lock = _try_lock(run_dir)
    if lock is None:
        print(f"stagelab mirror: another mirror follows run {run.id}")
        return 0
    if run.target is not None:  # through ssh: a killed mirror's forward may outlive it
        from engine.remote.mirror_shell import end_left_forward

        end_left_forward((run.placement or {}).get("remote_run_id") or run.id)

    def log(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    mirror = Mirror(store, run.id, transport, run_dir=run_dir, log=log)
    signal.signal(signal.SIGTERM, lambda *_: mirror.stop.set())
    signal.signal(signal.SIGINT, lambda *_: mirror.stop.set())
    log(f"mirroring run {run.id}")
    try:
        status = mirror.run()
    finally:
        lock.close()
    p99 = percentile(mirror.lags_ms, 99)
    lag = f"; mirror lag p99 {p99:.0f} ms over {len(mirror.lags_ms)} points" if p99 else ""
    log(f"run {run.id} {status or 'still running there; the mirror stopped'}{lag}")
    return 0 if status is not None or mirror.stop.is_set() else 1
