"""Starting a run: check it, record it and start its engine process. Shared by the CLI and the GUI,
neither of which trains in its own process. Importing it is cheap (the queries load on
first use). `module_command` lives in engine.launch.command (re-exported here)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.launch.command import module_command
from engine.store.workspace import Workspace

if TYPE_CHECKING:
    from engine.store.db import Store


def start_in_own_session(cmd: list[str], log_path: Path) -> subprocess.Popen:
    """Start `cmd` in a session of its own (closing the terminal or the window does not
    stop it), its output appended to `log_path`: the sweep, queue and mirror processes."""
    with open(log_path, "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            start_new_session=True,
        )


def experiment_for(
    store: Store, name: str, text: str, plan_dir: str, opened_from: str | None = None
) -> str:
    """The experiment with this name and exactly this plan, or a new one: running the same
    file again adds a run to its experiment, an edited plan starts a new experiment.

    `opened_from` is the experiment whose plan the editor opened (a clone): the run joins
    it if the plan is unchanged or it has no runs yet (its plan then becomes the edited
    one); otherwise the edited plan becomes a new experiment with it as parent.
    """
    from engine.store import queries

    if opened_from is not None:
        exp = queries.get_experiment(store, opened_from)
        if exp.plan_text == text and exp.plan_dir == plan_dir:
            return exp.id
        if not exp.runs:
            queries.replace_plan(store, exp.id, text, plan_dir)
            return exp.id
        return queries.create_experiment(store, name, text, plan_dir, parent_id=exp.id)
    for exp in queries.list_experiments(store):
        if exp.name == name and exp.plan_text == text and exp.plan_dir == plan_dir:
            return exp.id
    return queries.create_experiment(store, name, text, plan_dir)


@dataclass(frozen=True)
class Nodes:
    """Several machines: torchrun's c10d rendezvous at `rdzv` (HOST:PORT)."""

    count: int = 1
    rank: int = 0
    rdzv: str | None = None


def processes(gpus: str, nproc: int) -> int:
    """Processes per node: one per chosen GPU, else `nproc` (CPU, gloo)."""
    return len(gpus.split(",")) if gpus and gpus != "cpu" else max(nproc, 1)


def _torchrun(gpus: str, nproc: int, nodes: Nodes) -> list[str]:
    """PyTorch's launcher (torch.distributed.run) starting `python -m engine run`."""
    if getattr(sys, "frozen", False):
        raise RuntimeError("several processes need a Python installation with torchrun")
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    cmd += ["--nproc-per-node", str(processes(gpus, nproc)), "--max-restarts", "0"]
    if nodes.count > 1:
        cmd += ["--nnodes", str(nodes.count), "--node-rank", str(nodes.rank)]
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", str(nodes.rdzv)]
        cmd += ["--rdzv-id", f"stagelab-{nodes.rdzv}"]
    else:
        cmd += ["--standalone"]
    return [*cmd, "-m", "engine", "run"]


def launch_env(gpus: str) -> dict[str, str]:
    """The engine's extra environment under torchrun: its backend and visible GPUs."""
    env = {"STAGELAB_DIST_BACKEND": "gloo" if gpus in ("", "cpu") else "nccl"}
    if gpus and gpus != "cpu":
        env["CUDA_VISIBLE_DEVICES"] = gpus
    return env


def engine_command(
    workspace: Workspace,
    run_id: str,
    *,
    resume: bool,
    gpus: str = "cpu",
    nproc: int = 1,
    nodes: Nodes | None = None,
) -> list[str]:
    """Command line of the engine process for a run: under torchrun when the run has
    several processes or machines (with `launch_env`)."""
    nodes = nodes or Nodes()
    if distributed(gpus, nproc, nodes):
        # `--run-id`: torchrun's parser would take `--run` for its `--run-path`.
        head, flag = _torchrun(gpus, nproc, nodes), "--run-id"
    else:
        head, flag = [*module_command("engine"), "run"], "--run"
    cmd = [*head, "--workspace", str(workspace.root), flag, run_id]
    return cmd + ["--resume"] if resume else cmd


def distributed(gpus: str, nproc: int, nodes: Nodes) -> bool:
    """Whether the run starts under torchrun."""
    return processes(gpus, nproc) > 1 or nodes.count > 1


def worker_command(gpus: str, nproc: int, nodes: Nodes) -> list[str]:
    """A node other than the recording one (`--node-rank` > 0): its processes follow the
    owner on node 0 and record nothing here (with `launch_env`)."""
    return [*_torchrun(gpus, nproc, nodes), "--worker"]


def start_engine(
    workspace: Workspace,
    run_id: str,
    *,
    resume: bool,
    detach: bool,
    nodes: Nodes | None = None,
) -> subprocess.Popen:
    """Start the engine process of a run, its output going to the run's engine.log.

    A run of several processes (`nproc`, or several GPUs) starts under torchrun. A detached
    engine gets its own session, so closing the terminal (or the GUI) does not stop it. With
    an engine server (engine.launch.served) a run on this machine is forked by it, ready to
    train, in a session of its own (the CLI passes Ctrl-C on to it); a run of several
    processes as a group of forks that torchrun's standalone launcher would have started
    (engine/process/group.py). GPU runs of several processes name their devices in
    CUDA_VISIBLE_DEVICES, which the server refuses: they start under torchrun.
    """
    from engine.store import Store, queries

    run = queries.get_run(Store.open(workspace.db_path), run_id)
    run_dir = workspace.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    nodes = nodes or Nodes()
    cmd = engine_command(
        workspace, run_id, resume=resume, gpus=run.gpus, nproc=run.nproc, nodes=nodes
    )
    several = distributed(run.gpus, run.nproc, nodes)
    extra = launch_env(run.gpus) if several else {}
    env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    if nodes.count == 1:  # several machines meet through torchrun's rendezvous
        from engine.launch.served import start_served

        # The one-process command line; the server forks the ranks torchrun would start.
        one = engine_command(workspace, run_id, resume=resume)
        served = start_served(
            one[len(module_command("engine")) :],
            env,
            run_dir / "engine.log",
            nproc=processes(run.gpus, run.nproc),
        )
        if served is not None:
            return served  # type: ignore[return-value] - Popen's interface, see ServedEngine
    log = open(run_dir / "engine.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=detach,
    )


def record_run(
    workspace: Workspace,
    store: Store,
    *,
    name: str,
    plan_text: str,
    plan_dir: str,
    gpus: str,
    opened_from: str | None = None,
    use_cache: bool = True,
    experiment_id: str | None = None,
    nproc: int = 1,
    nodes: int = 1,
) -> str:
    """Record a queued run of a plan (in the experiment of that name and plan text, or see
    `experiment_for` for a plan opened from an experiment; `experiment_id` names the
    experiment outright, as a sweep does for its trials). `use_cache` False: no stage is
    reused (`--no-cache`). Its placement says it trains here: this host, `nproc` processes
    on each of `nodes` machines, the GPUs (`stagelab show`)."""
    import socket

    from engine.store import queries

    if experiment_id is None:
        experiment_id = experiment_for(store, name, plan_text, plan_dir, opened_from)
    return queries.create_run(
        store,
        experiment_id,
        plan_text=plan_text,
        plan_dir=plan_dir,
        gpus=gpus,
        runs_dir=workspace.runs_dir,
        use_cache=use_cache,
        nproc=nproc,
        placement={
            "kind": "local",
            "host": socket.gethostname(),
            "processes": nproc,
            "nodes": nodes,
            "gpus": gpus,
        },
    )


@dataclass(frozen=True)
class RunStart:
    """What `start_run` did: the recorded run and its engine process, or every problem
    that kept it from starting (then nothing was recorded)."""

    run_id: str | None = None
    proc: subprocess.Popen | None = None
    problems: tuple[str, ...] = ()


def start_run(
    workspace: Workspace,
    store: Store,
    *,
    plan_text: str,
    plan_dir: str,
    name: str | None = None,
    gpus: str = "cpu",
    nproc: int = 1,
    nodes: Nodes | None = None,
    use_cache: bool = True,
    opened_from: str | None = None,
    experiment_id: str | None = None,
    detach: bool = True,
    source: str = "plan",
) -> RunStart:
    """Start a run of plan text: validate it, check that its batches split over the
    processes, record the run (in `experiment_id`, or see `experiment_for`) and start its
    engine. The one way the CLI, the window and the sweep driver start a run.

    Returns:
        RunStart with the run and its process, or with the problems and nothing recorded.
    """
    nodes = nodes or Nodes()
    plan, problems = checked_plan(plan_text, plan_dir, processes(gpus, nproc) * nodes.count, source)
    if plan is not None and gpus == "cpu":  # what needs a GPU (kernels: liger)
        from engine.spec.kernel_checks import device_problems

        problems = tuple(str(p) for p in device_problems(plan, "cpu"))
    if problems:
        return RunStart(problems=problems)
    run_id = record_run(
        workspace,
        store,
        name=name or plan.name,
        plan_text=plan_text,
        plan_dir=plan_dir,
        gpus=gpus,
        opened_from=opened_from,
        use_cache=use_cache,
        experiment_id=experiment_id,
        nproc=processes(gpus, nproc),
        nodes=nodes.count,
    )
    return RunStart(
        run_id, start_engine(workspace, run_id, resume=False, detach=detach, nodes=nodes)
    )


def checked_plan(
    plan_text: str, plan_dir: str, world: int = 1, source: str = "plan"
) -> tuple[Any, tuple[str, ...]]:
    """The validated plan and no problems, or None and every problem: the plan's own, then
    batches that do not split over `world` processes. What `start_run` checks first; the
    window asks it before it records anything of its own (a clone's experiment)."""
    from pathlib import Path

    from engine.spec import PlanInvalid, load_plan_text
    from engine.spec.world import batch_problems

    try:
        plan = load_plan_text(plan_text, source=source, plan_dir=Path(plan_dir))
    except PlanInvalid as exc:
        return None, tuple(str(p) for p in exc.problems)
    problems = tuple(batch_problems(plan, world))
    return (None, problems) if problems else (plan, ())
