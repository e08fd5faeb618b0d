"""The target's side of `stagelab run --target` and `resume`: `python -m engine.remote.agent`
reads a JSON request on stdin, records the run with the id the desktop chose in the target's
workspace (or, with "resume", marks it queued again) and starts its engine detached (the
ordinary engine: it records there, the desktop's mirror follows it), forked by the engine
server the target keeps (engine/launch/kept_server.py). Prints JSON:
{run_id, pid, host, workspace, run_dir}.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from engine.launch.kept_server import ensure_server
from engine.launch.runs import experiment_for, start_engine
from engine.launch.served import SERVER_ENV
from engine.store import Store, Workspace, queries
from engine.store.status import RESUMABLE, RunStatus

CLAIM_WAIT_S = 120.0  # a resumed engine's start (imports) until it owns the run


class Refused(RuntimeError):
    """The request cannot be done there; the message is the sentence the desktop shows."""


def start_here(request: dict) -> dict:
    """Record (or, with "resume", continue) the run and start its engine, detached."""
    # The Hub switches of the desktop travel with the run (validation there assumed them).
    os.environ.update({k: str(v) for k, v in (request.get("env") or {}).items()})
    workspace = Workspace.open(request["workspace"])
    store = Store.open(workspace.db_path)
    run_id = request["run_id"]
    resume = bool(request.get("resume"))
    if not resume:
        exp = experiment_for(store, request["name"], request["plan_text"], request["plan_dir"])
        queries.create_run(
            store,
            exp,
            plan_text=request["plan_text"],
            plan_dir=request["plan_dir"],
            gpus=request.get("gpus", "cpu"),
            runs_dir=workspace.runs_dir,
            use_cache=request.get("use_cache", True),
            nproc=int(request.get("nproc", 1)),
            placement={"kind": "local", "host": socket.gethostname()},
            run_id=run_id,
        )
    else:
        _queue_again(store, run_id, request.get("nproc"), job=request.get("start") is False)
    if request.get("start", True) is False:  # a Slurm job: sbatch starts its engine
        return {
            "run_id": run_id,
            "pid": None,
            "host": socket.gethostname(),
            "workspace": str(workspace.root),
            "run_dir": str(workspace.run_dir(run_id)),
        }
    _keep_server(workspace.run_dir(run_id) / "engine.log")
    proc = start_engine(workspace, run_id, resume=resume, detach=True)
    if resume:
        _wait_for_claim(store, workspace, run_id, proc)
    return {
        "run_id": run_id,
        "pid": proc.pid,
        "host": socket.gethostname(),
        "workspace": str(workspace.root),
        "run_dir": str(workspace.run_dir(run_id)),
    }


def _keep_server(log_path: Path) -> None:
    """Fork the engine from this machine's kept server (engine/launch/kept_server.py),
    started (and waited for) where none answers; where it cannot start, the engine starts
    on its own."""
    if os.environ.get(SERVER_ENV):  # named on the target, or turned off with 0
        return
    path, said = ensure_server(dict(os.environ, PYTHONUNBUFFERED="1"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(said + "\n")
    if path is not None:
        os.environ[SERVER_ENV] = str(path)


def _queue_again(store: Store, run_id: str, nproc: int | None, job: bool = False) -> None:
    """A resumed run waits for its new engine as `queued`: the mirror, which may pull
    before the engine owns the run, must not read the old engine's end as the run's.
    `job`: a Slurm run, whose job cancelled before it started left it `queued` here (the
    desktop has checked that Slurm no longer has that job)."""
    run = queries.get_run(store, run_id)
    if run.status not in RESUMABLE and not (job and run.status == RunStatus.QUEUED):
        raise Refused(
            f"run {run_id} is {run.status} there; only an interrupted, stopped or failed run "
            "can be resumed"
        )
    if nproc and int(nproc) != run.nproc:
        queries.set_run_nproc(store, run_id, int(nproc))
    queries.set_run_status(store, run_id, RunStatus.QUEUED)


def _wait_for_claim(store: Store, workspace: Workspace, run_id: str, proc) -> None:  # noqa: ANN001
    """Until the resumed engine owns the run; an engine that exits first leaves the run
    interrupted and its log's last line is the error."""
    deadline = time.monotonic() + CLAIM_WAIT_S
    while time.monotonic() < deadline:
        if queries.get_run(store, run_id).stored_status != RunStatus.QUEUED:
            return
        if proc.poll() is not None:
            if queries.get_run(store, run_id).stored_status == RunStatus.QUEUED:
                queries.set_run_status(store, run_id, RunStatus.INTERRUPTED)
            log = workspace.run_dir(run_id) / "engine.log"
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            raise Refused(
                f"its engine exited at once ({lines[-1] if lines else 'exit ' + str(proc.returncode)})"
            )
        time.sleep(0.2)


def main() -> int:
    try:
        answer = start_here(json.loads(sys.stdin.read()))
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:  # said to the desktop in one line, which shows it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
