"""The target's side of `stagelab run --target`: `python -m engine.remote.agent` reads a JSON
request on stdin, records the run with the id the desktop chose in the target's workspace
and starts its engine detached (the ordinary engine: it records there, the desktop's
mirror follows it). Prints JSON: {run_id, pid, host, workspace, run_dir}.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from engine.launch.runs import experiment_for, start_engine
from engine.store import Store, Workspace, queries


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
    proc = start_engine(workspace, run_id, resume=resume, detach=True)
    return {
        "run_id": run_id,
        "pid": proc.pid,
        "host": socket.gethostname(),
        "workspace": str(workspace.root),
        "run_dir": str(workspace.run_dir(run_id)),
    }


def main() -> int:
    try:
        answer = start_here(json.loads(sys.stdin.read()))
    except Exception as exc:  # said to the desktop in one line, which shows it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
