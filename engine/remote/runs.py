"""`stagelab run PLAN --target NAME` over SSH: check the plan here, make sure the target has
this Stagelab, send what it lacks of the plan's files, record the run here, record the same
run id there and start its engine detached, then start the local mirror.

Nothing is recorded here before the target has the files: a target that is unreachable,
lacks disk or has another Stagelab leaves one sentence and no run behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.launch.runs import checked_plan, experiment_for, processes
from engine.remote import slurm_runs
from engine.remote.mirror_process import mirror_running, start_mirror
from engine.remote.setup import RemoteSide, SetupError, ready
from engine.remote.shell import Shell, ShellError, shell_for
from engine.remote.slurm import SlurmError
from engine.remote.sync import HashCache, Progress, sync_plan
from engine.remote.targets import Target, TargetError, get_target
from engine.store.status import RunStatus

if TYPE_CHECKING:
    from engine.store.db import Store
    from engine.store.workspace import Workspace

# The desktop's Hub switches travel with the run: validation here assumed them.
PASSED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
HASH_CACHE = "file-sha256.json"  # the plan files' sha256 by path, size and mtime (sync.py)


@dataclass(frozen=True)
class RemoteStart:
    """The run recorded here and started there, or every problem (nothing recorded)."""

    run_id: str | None = None
    problems: tuple[str, ...] = ()
    sent_bytes: int = 0
    seconds: dict[str, float] | None = None  # how long each step took


def passed_env(workspace: Workspace) -> dict[str, str]:
    """What travels to the engine there: the Hub switches and the notify settings."""
    from engine.store.settings import notify_env

    hub = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    return {**hub, **notify_env(workspace.root)}


def remote_workspace(side: RemoteSide) -> str:
    """The target's Stagelab workspace: an ordinary one inside the workdir."""
    return f"{side.workdir}/workspace"


def start_remote_run(
    workspace: Workspace,
    store: Store,
    target: Target,
    *,
    plan_text: str,
    plan_dir: str,
    name: str | None = None,
    gpus: str = "cpu",
    nproc: int = 1,
    use_cache: bool = True,
    source: str = "plan",
    progress: Progress | None = None,
    say: Callable[[str], None] = lambda _: None,
    mirror: bool = True,
) -> RemoteStart:
    """Start a run of plan text on an SSH target (see the module's doc)."""
    from engine.store import queries

    clock = {"start": time.monotonic()}
    jobs = slurm_runs.layout(target, nproc) if slurm_runs.is_slurm(target) else None
    world = jobs.world if jobs else processes(gpus, nproc)
    plan, problems = checked_plan(plan_text, plan_dir, world, source)
    if jobs and not problems:
        problems = tuple(jobs.options.problems())
    if problems:
        return RemoteStart(problems=problems)
    shell = shell_for(target)
    try:
        side = ready(shell, target, workspace.root / "cache" / "wheels", install=False)
        clock["ready"] = time.monotonic()
        say(f"sending the plan's files to {target.where} (only what it lacks)")
        synced = sync_plan(
            shell,
            side.python,
            side.workdir,
            plan_text,
            Path(plan_dir),
            progress,
            hashes=HashCache(workspace.root / "cache" / HASH_CACHE),
            disk_free=side.disk_free,
            target_name=target.name,
        )
        clock["synced"] = time.monotonic()
    except (ShellError, SetupError) as exc:
        return RemoteStart(problems=(str(exc),))
    exp = experiment_for(store, name or plan.name, plan_text, plan_dir)
    if jobs:  # Slurm gives the GPUs; the processes follow the target's options
        gpus, nproc = jobs.gpus, jobs.per_node
    placement = {
        "kind": "slurm" if jobs else "ssh",
        "host": target.host,
        "processes": world,
        "nodes": jobs.options.nodes if jobs else 1,
        "gpus": gpus,
        "remote_workspace": remote_workspace(side),
        "remote_python": side.python,
        "remote_env": side.env(),
        "files": synced.copies,
    }
    run_id = queries.create_run(
        store,
        exp,
        plan_text=plan_text,
        plan_dir=plan_dir,
        gpus=gpus,
        runs_dir=workspace.runs_dir,
        use_cache=use_cache,
        nproc=processes(gpus, nproc),
        target=target.name,
        placement=placement,
    )
    request = {
        "run_id": run_id,
        "workspace": remote_workspace(side),
        "name": name or plan.name,
        "plan_text": synced.plan_text,
        "plan_dir": side.workdir,
        "gpus": gpus,
        "nproc": processes(gpus, nproc),
        "use_cache": use_cache,
        "env": passed_env(workspace),
        "start": jobs is None,  # a Slurm job's engine starts when Slurm runs it
    }
    try:
        answer = start_there(shell, side, request)
        if jobs:
            slurm_runs.submit_recorded(
                shell,
                store,
                target,
                side,
                run_id=run_id,
                workspace=remote_workspace(side),
                nproc=nproc,
                name=name or plan.name,
                passed=request["env"],
            )
    except (ShellError, SetupError, SlurmError) as exc:
        queries.set_run_status(store, run_id, RunStatus.FAILED, error=str(exc))
        return RemoteStart(run_id=run_id, problems=(str(exc),))
    queries.set_placement(store, run_id, remote_run_id=run_id, host=answer.get("host"))
    clock["started"] = time.monotonic()
    if mirror:
        start_mirror(workspace, run_id)  # follows the run and records it here
    took = {k: round(v - clock["start"], 3) for k, v in clock.items() if k != "start"}
    return RemoteStart(run_id=run_id, sent_bytes=synced.sent_bytes, seconds=took)


def resume_remote_run(
    workspace: Workspace,
    store: Store,
    run_id: str,
    *,
    nproc: int | None = None,
    say: Callable[[str], None] = lambda _: None,
    mirror: bool = True,
) -> RemoteStart:
    """Continue a run on its target from its checkpoint (`stagelab resume` and the window's
    Resume): the target must be reachable and have this Stagelab; its agent queues the run
    there again (the same id) and starts its engine; then the local mirror follows it.
    Blocks on the network: the window calls it on a worker thread."""
    from engine.store import queries
    from engine.store.status import RunStatus

    clock = {"start": time.monotonic()}
    run = queries.get_run(store, run_id)
    placement = run.placement or {}
    if run.target is None or not placement.get("remote_workspace"):
        return RemoteStart(
            problems=(f"run {run.id}'s record does not say where it trains on '{run.target}'",)
        )
    try:
        target = get_target(store, run.target)
    except (queries.NotFound, TargetError):
        return RemoteStart(
            problems=(
                f"run {run.id} trained on target '{run.target}', which this workspace no longer "
                f"has; add it again with: stagelab target add {run.target} URL",
            )
        )
    shell = shell_for(target)
    say(f"connecting to {target.where}")
    try:
        side = ready(shell, target, workspace.root / "cache" / "wheels", install=False)
        _wait_mirror_end(Path(run.run_dir))  # the last mirror stores the end, then goes
        say(f"resuming run {run.id} on {target.where}")
        request = {
            "run_id": placement.get("remote_run_id") or run.id,
            "workspace": placement["remote_workspace"],
            "resume": True,
            "nproc": nproc,
            "env": passed_env(workspace),
            "start": not slurm_runs.is_slurm(target),
        }
        if slurm_runs.is_slurm(target):
            slurm_runs.check_job_gone(shell, run)
        answer = start_there(shell, side, request)
        if slurm_runs.is_slurm(target):  # a new job that resumes the run
            slurm_runs.submit_recorded(
                shell,
                store,
                target,
                side,
                run_id=request["run_id"],
                workspace=placement["remote_workspace"],
                nproc=nproc or run.nproc,
                resume=True,
                passed=request["env"],
            )
    except (ShellError, SetupError, SlurmError) as exc:
        return RemoteStart(run_id=run.id, problems=(str(exc),))
    # The run's Stagelab there may have been installed anew since it started.
    queries.set_placement(
        store, run.id, remote_python=side.python, remote_env=side.env(), host=answer.get("host")
    )
    queries.set_run_status(store, run.id, RunStatus.QUEUED)  # the mirror stores `running`
    clock["started"] = time.monotonic()
    if mirror:
        start_mirror(workspace, run.id)
    took = {k: round(v - clock["start"], 3) for k, v in clock.items() if k != "start"}
    return RemoteStart(run_id=run.id, seconds=took)


def _wait_mirror_end(run_dir: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while mirror_running(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)


def start_there(shell: Shell, side: RemoteSide, request: dict) -> dict:
    """Ask the target's agent to record (or resume) the run and start its engine."""
    done = shell.script(
        side.command("-m", "engine.remote.agent"), input=json.dumps(request).encode(), timeout=300
    )
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise SetupError(
            f"the target could not {'resume' if request.get('resume') else 'start'} the run: {said[-1] if said else 'exit ' + str(done.returncode)}"
        )
    return json.loads(done.stdout.decode().strip().splitlines()[-1])
