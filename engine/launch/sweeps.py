"""Starting, stopping and resuming a sweep: record it, then start its sweep process
detached. Shared by `stagelab sweep` / `sweep-resume` and the window, neither of which runs
the sweep in its own process when it detaches. No Optuna and no torch here (the window
imports it): the sweep process itself is `python -m engine sweep` (engine.sweep.process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import TYPE_CHECKING, Any

from engine.launch.runs import start_in_own_session
from engine.store.status import SweepStatus

if TYPE_CHECKING:
    from engine.store import Store, Workspace
    from engine.store.sweeps import SweepInfo


def sweep_parallel(gpus: str, parallel: int = 1) -> int:
    """Trials at once: `parallel` on CPU, at least one per chosen GPU."""
    if gpus in ("", "cpu"):
        return max(parallel, 1)
    return max(parallel, len(gpus.split(",")))


def record_sweep(
    store: Store,
    *,
    name: str,
    plan_text: str,
    plan_dir: str,
    spec: dict[str, Any],
    gpus: str = "cpu",
    parallel: int = 1,
    use_cache: bool = True,
    opened_from: str | None = None,
) -> str:
    """Record a sweep (not started yet) of a plan with a valid `sweep:` section, in the
    experiment of that name and plan text (see `engine.launch.runs.experiment_for`); returns
    the sweep's id. `spec` is the validated section as plain data."""
    from engine.launch.runs import experiment_for
    from engine.store import queries

    experiment_id = experiment_for(store, name, plan_text, plan_dir, opened_from)
    return queries.create_sweep(
        store,
        experiment_id,
        spec,
        gpus=gpus,
        parallel=sweep_parallel(gpus, parallel),
        use_cache=use_cache,
    )


def sweep_command(workspace: Workspace, sweep_id: str) -> list[str]:
    """Command line of the sweep process of a recorded sweep."""
    from engine.launch.runs import module_command

    return [*module_command("engine"), "sweep", "--workspace", str(workspace.root)] + [
        "--sweep",
        sweep_id,
    ]


def start_sweep_process(workspace: Workspace, sweep_id: str) -> subprocess.Popen:
    """Start the sweep process of a recorded sweep in its own session, its output going to
    `<workspace>/sweeps/<id>.log`: closing the terminal or the window does not stop it. It
    claims the sweep (owner pid and heartbeat) within a second or two."""
    folder = workspace.root / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    return start_in_own_session(sweep_command(workspace, sweep_id), folder / f"{sweep_id}.log")


def why_not_resumable(info: SweepInfo) -> str | None:
    """Why a sweep cannot be resumed (running or finished), or None: an interrupted,
    stopped or failed sweep can."""
    if info.status == SweepStatus.RUNNING:
        return f"sweep {info.id} is running (pid {info.pid})"
    if info.status == SweepStatus.FINISHED:
        return f"sweep {info.id} has finished ({info.stop_reason})"
    return None


def stop_sweep(store: Store, sweep_id: str) -> bool:
    """Ask a running sweep to stop, as Ctrl-C does: its running trials stop at a checkpoint
    and it ends `stopped` (resumable). False when it has no live process on this machine."""
    from engine.store import queries

    info = queries.get_sweep(store, sweep_id)
    if info.status != SweepStatus.RUNNING or info.pid is None or info.host != socket.gethostname():
        return False
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
