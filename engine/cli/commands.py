"""`stagelab validate`, `run`, `resume`, `clone` and `desktop-install`. Each returns an
exit code: 0 ok, 1 the run failed, 2 bad input. No torch here: training is a child
process. The other commands live in their own modules (engine/cli/main.py: COMMAND_MODULES),
and the store loads only in the commands that open it: `validate` reads the plan alone."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.cli_args import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    UserError,
    lookup,
    open_workspace,
    parse_gpus,
)
from engine.launch.runs import Nodes, processes, start_engine, start_run  # stdlib only
from engine.resources import demo_plan_path
from engine.spec import PlanInvalid, load_plan, load_plan_text
from engine.spec.plan import read_plan_file
from engine.spec.world import batch_problems
from engine.store.status import RESUMABLE, RunStatus

if TYPE_CHECKING:
    from engine.store import Store

# Names that moved to the command's own module, still found here (PEP 562).
_MOVED = {"run_json": "engine.cli.show_commands"}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'engine.cli.commands' has no attribute {name!r}")
    return getattr(importlib.import_module(_MOVED[name]), name)


# Why a run cannot be resumed, by its status.
NOT_RESUMABLE = {
    RunStatus.FINISHED: "it has finished; clone its experiment to run it again",
    RunStatus.RUNNING: "it is running",
    RunStatus.QUEUED: "it has not started yet",
}


def cmd_validate(args: argparse.Namespace) -> int:
    """`stagelab validate PLAN | --demo [--gpus 0,1 | --gpu-memory 24GB]`: with a GPU,
    also warn (standard error, exit code unchanged) of stages that will not fit it."""
    if args.demo == bool(args.plan):
        raise UserError("name a plan file, or --demo for the built-in demo (not both)")
    if args.demo:
        args.plan = demo_plan_path()
    try:
        plan = load_plan(args.plan)
    except PlanInvalid as exc:
        print(f"{args.plan}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.gpus == "cpu":  # what the plan asks of a GPU (kernels: liger)
        from engine.spec.kernel_checks import device_problems

        on_cpu = device_problems(plan, "cpu")
        if on_cpu:
            print(f"{args.plan}: {len(on_cpu)} problem(s) on the CPU:", file=sys.stderr)
            for problem in on_cpu:
                print(f"  {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
    print(f"{args.plan}: valid plan '{plan.name}' with {len(plan.stages)} stage(s)")
    if args.gpu_memory is not None or args.gpus != "cpu":
        from engine.cli.memory_check import warn_memory

        warn_memory(
            read_plan_file(Path(args.plan)),
            Path(args.plan).resolve().parent,
            gpus=parse_gpus(args.gpus),
            gpu_memory=args.gpu_memory,
        )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """`stagelab run PLAN|EXPERIMENT [--name N] [--gpus G] [--detach] [--no-cache]`."""
    if args.demo == bool(args.plan):
        raise UserError("give a plan file, an experiment, or --demo (not both)")
    if not args.demo and not Path(args.plan).exists() and not _looks_like_file(args.plan):
        return _run_experiment(args)
    path = demo_plan_path() if args.demo else Path(args.plan)
    try:
        text = read_plan_file(path)
        plan = load_plan_text(text, source=Path(path).name, plan_dir=Path(path).resolve().parent)
    except PlanInvalid as exc:
        print(f"{path}: {len(exc.problems)} problem(s); nothing was started:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    gpus = parse_gpus(args.gpus)
    nodes = _nodes(args, gpus)
    if nodes.rank > 0:
        return _run_worker(gpus, args.nproc, nodes)
    if gpus != "cpu":  # a stage that will not fit the GPU: said before it starts
        from engine.cli.memory_check import warn_memory

        warn_memory(text, Path(path).resolve().parent, gpus=gpus)
    if getattr(args, "dry_run", False) and not args.target:
        raise UserError("--dry-run shows a Slurm job's batch script: give --target NAME")
    workspace, store = open_workspace(args)
    if args.target:
        from engine.cli.target_commands import run_on_target

        started = run_on_target(args, workspace, store, text, str(Path(path).resolve().parent))
        if getattr(started, "dry_run", False) and not started.problems:
            return EXIT_OK
        return _started(str(path), store, started, detach=args.detach)
    started = start_run(
        workspace,
        store,
        plan_text=text,
        plan_dir=str(Path(path).resolve().parent),
        name=args.name or plan.name,
        gpus=gpus,
        nproc=args.nproc,
        nodes=nodes,
        use_cache=not args.no_cache,
        detach=args.detach,
        source=Path(path).name,
    )
    return _started(str(path), store, started, detach=args.detach)


def _started(what: str, store: Store, started, *, detach: bool) -> int:
    """Follow a run `start_run` started, or say why it did not start."""
    if started.problems:
        print(f"{what}: nothing was started:", file=sys.stderr)
        for problem in started.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _follow(store, started.run_id, started.proc, detach=detach)


def _nodes(args: argparse.Namespace, gpus: str) -> Nodes:
    """The machines of a run from --nnodes/--node-rank/--rdzv (checked)."""
    nproc = getattr(args, "nproc", None) or 1
    if nproc < 1:
        raise UserError(f"--nproc must be 1 or more (got {nproc})")
    if nproc > 1 and gpus != "cpu" and nproc != processes(gpus, 1):
        raise UserError("--nproc is for CPU processes; with --gpus every GPU gets one process")
    count = getattr(args, "nnodes", 1)
    rank = getattr(args, "node_rank", 0)
    if count < 1 or not 0 <= rank < count:
        raise UserError(f"--node-rank must be between 0 and {count - 1} (--nnodes {count})")
    if count > 1 and not args.rdzv:
        raise UserError("several machines (--nnodes) need --rdzv HOST:PORT of node 0")
    return Nodes(count, rank, args.rdzv)


def _run_worker(gpus: str, nproc: int, nodes: Nodes) -> int:
    """`--node-rank` > 0: this machine's processes train; node 0 records everything."""
    import os
    import subprocess

    from engine.launch.runs import launch_env, worker_command

    print(f"node {nodes.rank} of {nodes.count}: joining the run at {nodes.rdzv}", file=sys.stderr)
    cmd = worker_command(gpus, nproc, nodes)
    return subprocess.call(cmd, env=dict(os.environ, PYTHONUNBUFFERED="1", **launch_env(gpus)))


def _looks_like_file(ref: str) -> bool:
    return "/" in ref or ref.lower().endswith((".yaml", ".yml", ".json"))


def _run_experiment(args: argparse.Namespace) -> int:
    """`stagelab run EXPERIMENT`: a new run of the experiment's stored plan."""
    gpus = parse_gpus(args.gpus)
    nodes = _nodes(args, gpus)
    if nodes.rank > 0:
        return _run_worker(gpus, args.nproc, nodes)
    from engine.store import queries

    workspace, store = open_workspace(args)
    exp = lookup(queries.get_experiment, store, args.plan)
    started = start_run(
        workspace,
        store,
        plan_text=exp.plan_text,
        plan_dir=exp.plan_dir,
        gpus=gpus,
        nproc=args.nproc,
        nodes=nodes,
        use_cache=not args.no_cache,
        experiment_id=exp.id,
        detach=args.detach,
        source=exp.name,
    )
    what = f"experiment {exp.id} ('{exp.name}')"
    return _started(what, store, started, detach=args.detach)


def _follow(store: Store, run_id: str, proc, *, detach: bool) -> int:
    """A started engine: its id when detached, else its progress until it ends."""
    if detach:
        print(run_id)
        return EXIT_OK
    from engine.cli.follow import follow_run
    from engine.store import queries

    code = follow_run(store, run_id, proc)
    run = queries.get_run(store, run_id)
    if run.status == RunStatus.STOPPED:
        print(f"run {run_id} stopped at a checkpoint; continue with: stagelab resume {run_id}")
    elif run.status == RunStatus.FAILED:
        # One sentence; the traceback is in the log it names.
        print(
            f"run {run_id} failed: {run.error} (traceback: {Path(run.run_dir) / 'engine.log'})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    elif run.status == RunStatus.FINISHED:
        print(f"run {run_id} finished; see: stagelab show {run_id}")
    elif code != 0:
        # The engine could not record how it ended (its database refused writes): its log
        # says why.
        log = Path(run.run_dir) / "engine.log"
        said = (
            [
                line
                for line in log.read_text(errors="replace").splitlines()
                if line.startswith("stagelab engine:")
            ]
            if log.exists()
            else []
        )
        status = queries.effective_status(run.status, run.pid, run.host, run.heartbeat_ms)
        print(
            f"run {run_id} is {status}: its engine exited with code {code} without recording "
            f"why. {said[-1] if said else ''}\nlog: {log}; resume with: stagelab resume {run_id}",
            file=sys.stderr,
        )
    return EXIT_OK if code == 0 else EXIT_FAILED


def cmd_resume(args: argparse.Namespace) -> int:
    """`stagelab resume RUN`: continue an interrupted or stopped run from its checkpoint."""
    from engine.store import queries

    workspace, store = open_workspace(args)
    run = lookup(queries.get_run, store, args.run)
    nodes = _nodes(args, run.gpus)
    if args.nproc is not None and args.nproc != run.nproc and run.status in RESUMABLE:
        if run.gpus != "cpu":
            raise UserError("a GPU run resumes with one process per GPU; --nproc is for CPU runs")
        plan = load_plan_text(run.plan_text, plan_dir=Path(run.plan_dir))
        problems = batch_problems(plan, args.nproc * nodes.count)
        if problems:
            raise UserError(" ".join(problems))
        queries.set_run_nproc(store, run.id, args.nproc)
    if run.target is not None:  # it trains on a target: continued there
        from engine.cli.target_commands import resume_on_target

        return resume_on_target(args, workspace, store, run, _follow)
    if run.status == RunStatus.PAUSED:
        from engine.cli.watch import resume_live

        return resume_live(run)
    if run.status not in RESUMABLE:
        hint = NOT_RESUMABLE.get(run.status, f"its status is {run.status}")
        raise UserError(f"run {run.id} cannot be resumed: {hint}")
    proc = start_engine(workspace, run.id, resume=True, detach=args.detach, nodes=nodes)
    return _follow(store, run.id, proc, detach=args.detach)


def cmd_clone(args: argparse.Namespace) -> int:
    """`stagelab clone EXPERIMENT [--name N] [--set PATH=VALUE ...]`: prints the new id."""
    from engine.store import queries

    _, store = open_workspace(args)
    source = lookup(queries.get_experiment, store, args.experiment)
    if not args.set:
        print(queries.clone_experiment(store, source.id, args.name))
        return EXIT_OK
    text = _changed_plan_text(source, args.set)
    new_id = queries.create_experiment(
        store,
        args.name or f"{source.name} (clone)",
        text,
        source.plan_dir,
        parent_id=source.id,
        tags=source.tags,
    )
    print(new_id)
    return EXIT_OK


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """['stages.cls.optimizer.lr=3e-4'] → {'stages.cls.optimizer.lr': 0.0003} (YAML values).

    Raises:
        UserError: an item is not PATH=VALUE.
    """
    import yaml

    changes: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise UserError(f"--set {item!r}: write PATH=VALUE, e.g. stages.cls.optimizer.lr=3e-4")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _number(value) is not None:
            value = _number(value)  # YAML 1.1 reads '3e-4' as text
        changes[path.strip()] = value
    return changes


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _changed_plan_text(source: Any, items: list[str]) -> str:
    """The source experiment's plan with `--set` changes, validated whole.

    Raises:
        UserError: a path names no setting, or the changed plan has problems (all listed).
    """
    from engine.spec import parse_plan_text, plan_problems
    from engine.spec.paths import PathError, with_settings
    from engine.spec.plan import dump_yaml

    data = parse_plan_text(source.plan_text, source=source.name)
    try:
        changed = with_settings(data, parse_assignments(items))
    except PathError as exc:
        raise UserError(f"--set: {exc}") from None
    problems = plan_problems(changed, Path(source.plan_dir))
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise UserError(
            f"the changed plan has {len(problems)} problem(s); nothing was cloned:\n{listed}"
        )
    return dump_yaml(changed)


def cmd_desktop_install(args: argparse.Namespace) -> int:
    """`stagelab desktop-install [--uninstall]`."""
    from engine.cli.desktop import data_home, install

    try:
        done = install(uninstall=args.uninstall)
    except OSError as exc:
        where = exc.filename or data_home()
        raise UserError(
            f"cannot write the desktop files under {data_home()} ({where}: "
            f"{exc.strerror or exc}); set XDG_DATA_HOME to a folder you can write"
        ) from None
    verb = "removed" if args.uninstall else "installed"
    print(f"{verb} {len(done)} file(s) under {data_home()}")
    if not args.uninstall:
        print("Stagelab is in the application menu (log out and in if it does not show yet).")
    return EXIT_OK
