"""The sweep process (`python -m engine sweep`): claim the sweep, run its driver
(engine/sweep/driver.py) with an engine server for its trials, record how it ended."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import optuna

from engine.launch.served import engine_server_kept
from engine.store import Store, Workspace, queries
from engine.store.status import SweepStatus
from engine.store.sweeps import best_trial
from engine.sweep.driver import SweepDriver, _show


def run_sweep(workspace_root: Path, sweep_id: str) -> int:
    """The sweep process: claim the sweep, run it, record how it ended. Exit code 0 when
    it finished or was stopped, 1 when it failed, 2 when it is owned by another process."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workspace = Workspace.open(workspace_root)
    store = Store.open(workspace.db_path)
    try:
        queries.claim_sweep(store, sweep_id, pid=os.getpid(), host=socket.gethostname())
    except queries.StoreError as exc:
        print(f"stagelab sweep: {exc}", file=sys.stderr)
        return 2
    driver = SweepDriver(workspace, store, sweep_id)

    def on_signal(_signum: int, _frame: Any) -> None:
        if driver.stop_requested:
            raise KeyboardInterrupt
        driver.stop_requested = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Trials after the first start forked from a ready engine (engine.launch.served).
        with engine_server_kept():
            status = driver.run()
    except Exception as exc:  # noqa: BLE001 - recorded, then reported
        queries.end_sweep(store, sweep_id, SweepStatus.FAILED, f"{type(exc).__name__}: {exc}")
        print(f"stagelab sweep: sweep {sweep_id} failed: {exc}", file=sys.stderr)
        return 1
    reason = driver.reason or ("stopped on request" if status == SweepStatus.STOPPED else "done")
    queries.end_sweep(store, sweep_id, status, reason)
    best = best_trial(queries.get_sweep(store, sweep_id))
    print(f"sweep {sweep_id} {status}: {reason}", flush=True)
    if best is not None:
        print(
            f"best: trial {best.number} (run {best.run_id}) "
            f"{driver.sweep.objective.key} = {best.objective:.4g}  {_show(best.params)}",
            flush=True,
        )
    return 0
