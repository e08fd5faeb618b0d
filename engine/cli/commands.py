"""The `stagelab` commands other than the window. Each returns an exit code:
0 ok, 1 the run failed, 2 bad input. No torch here: training is a child process."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.channel.protocol import json_safe
from engine.cli.cli_args import (  # noqa: F401 - UserError is caught by main
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    UserError,
    lookup,
    open_for_writing,
    open_workspace,
    parse_gpus,
)
from engine.cli.launch import Nodes, batch_problems, processes, record_run, start_engine
from engine.cli.predict_command import cmd_predict  # noqa: F401
from engine.cli.sweep_commands import cmd_sweep, cmd_sweep_resume, show_sweep, sweep_summary  # noqa: F401
from engine.cli.watch import LiveError, cmd_pause, cmd_stop, cmd_watch, resume_live  # noqa: F401
from engine.resources import demo_plan_path
from engine.spec import PlanInvalid, load_plan, load_plan_text
from engine.spec.outputs import output_folders
from engine.spec.plan import read_plan_file
from engine.store import Store, Workspace, queries
from engine.store.export import write_metrics_csv

RESUMABLE = ("interrupted", "stopped", "failed")


def cmd_validate(args: argparse.Namespace) -> int:
    """`stagelab validate PLAN | --demo`."""
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
    print(f"{args.plan}: valid plan '{plan.name}' with {len(plan.stages)} stage(s)")
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
    problems = batch_problems(plan, processes(gpus, args.nproc) * nodes.count)
    if problems:
        print(f"{path}: nothing was started:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    workspace, store = open_workspace(args)
    run_id = record_run(
        workspace,
        store,
        name=args.name or plan.name,
        plan_text=text,
        plan_dir=str(Path(path).resolve().parent),
        gpus=gpus,
        use_cache=not args.no_cache,
        nproc=processes(gpus, args.nproc),
    )
    return _launch(workspace, store, run_id, resume=False, detach=args.detach, nodes=nodes)


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

    from engine.cli.launch import launch_env, worker_command

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
    workspace, store = open_workspace(args)
    exp = lookup(queries.get_experiment, store, args.plan)
    try:
        load_plan_text(exp.plan_text, source=exp.name, plan_dir=Path(exp.plan_dir))
    except PlanInvalid as exc:
        print(
            f"experiment {exp.id} ('{exp.name}'): {len(exc.problems)} problem(s); "
            "nothing was started:",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    plan = load_plan_text(exp.plan_text, source=exp.name, plan_dir=Path(exp.plan_dir))
    problems = batch_problems(plan, processes(gpus, args.nproc) * nodes.count)
    if problems:
        print(f"experiment {exp.id}: nothing was started:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    run_id = queries.create_run(
        store,
        exp.id,
        plan_text=exp.plan_text,
        plan_dir=exp.plan_dir,
        gpus=gpus,
        runs_dir=workspace.runs_dir,
        use_cache=not args.no_cache,
        nproc=processes(gpus, args.nproc),
    )
    return _launch(workspace, store, run_id, resume=False, detach=args.detach, nodes=nodes)


def _launch(
    workspace: Workspace,
    store: Store,
    run_id: str,
    *,
    resume: bool,
    detach: bool,
    nodes: Nodes | None = None,
) -> int:
    proc = start_engine(workspace, run_id, resume=resume, detach=detach, nodes=nodes)
    if detach:
        print(run_id)
        return EXIT_OK
    from engine.cli.follow import follow_run

    code = follow_run(store, run_id, proc)
    run = queries.get_run(store, run_id)
    if run.status == "stopped":
        print(f"run {run_id} stopped at a checkpoint; continue with: stagelab resume {run_id}")
    elif run.status == "failed":
        print(
            f"run {run_id} failed: {run.error}\nlog: {Path(run.run_dir) / 'engine.log'}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    elif run.status == "finished":
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
    if run.status == "paused":
        return resume_live(run)
    if run.status not in RESUMABLE:
        hint = {
            "finished": "it has finished; clone its experiment to run it again",
            "running": "it is running",
            "queued": "it has not started yet",
        }.get(run.status, f"its status is {run.status}")
        raise UserError(f"run {run.id} cannot be resumed: {hint}")
    return _launch(workspace, store, run.id, resume=True, detach=args.detach, nodes=nodes)


def cmd_clone(args: argparse.Namespace) -> int:
    """`stagelab clone EXPERIMENT [--name N] [--set PATH=VALUE ...]`: prints the new id."""
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


def run_json(store: Store, run: Any) -> dict[str, Any]:
    """The documented JSON of one run (docs/cli.md)."""
    experiment = queries.get_experiment(store, run.experiment_id)
    stages = queries.list_stages(store, run.id)
    # What a stage warned about while it trained (weights that started random, …).
    stage_warnings: dict[int, list[str]] = {}
    for e in queries.list_events(store, run.id, kind="model"):
        if e.level in ("warning", "error") and e.stage_idx is not None:
            stage_warnings.setdefault(e.stage_idx, []).append(e.message)
    return {
        "id": run.id,
        "experiment": {"id": experiment.id, "name": experiment.name},
        "number": run.number,
        "status": run.status,
        "pid": run.pid,
        "host": run.host,
        "socket": run.socket_address,
        "gpus": run.gpus,
        "created_ms": run.created_ms,
        "started_ms": run.started_ms,
        "ended_ms": run.ended_ms,
        "run_dir": run.run_dir,
        "error": run.error,
        # Problems of the record itself (failed database writes, set-aside rows).
        "warnings": [
            {"level": e.level, "message": e.message, "wall_ms": e.wall_ms}
            for e in queries.list_events(store, run.id, kind="store")
            if e.level in ("warning", "error")
        ],
        "stages": [
            {
                "index": s.idx,
                "name": s.name,
                "kind": s.kind,
                "status": s.status,
                "steps_done": s.steps_done,
                "total_steps": s.total_steps,
                "output_dir": s.output_dir,
                # The model folders in it: a joint stage's members, else the folder.
                "outputs": output_folders(s.output_dir),
                "metrics": s.final_metrics or {},
                "fingerprint": s.fingerprint,
                "reused_from": s.reused_from,
                "warnings": stage_warnings.get(s.idx, []),
            }
            for s in stages
        ],
        "cache": run.use_cache,
    }


def cmd_ls(args: argparse.Namespace) -> int:
    """`stagelab ls [--json]`."""
    _, store = open_workspace(args)
    experiments = queries.list_experiments(store)
    rows = []
    for exp in experiments:
        runs = queries.list_runs(store, exp.id)
        rows.append(
            {
                "id": exp.id,
                "name": exp.name,
                "parent_id": exp.parent_id,
                "tags": list(exp.tags),
                "created_ms": exp.created_ms,
                "runs": [
                    {
                        "id": r.id,
                        "number": r.number,
                        "status": r.status,
                        "created_ms": r.created_ms,
                        "ended_ms": r.ended_ms,
                    }
                    for r in runs
                ],
            }
        )
    sweeps = [sweep_summary(sw) for sw in queries.list_sweeps(store)]
    if args.json:
        print(json.dumps(json_safe({"experiments": rows, "sweeps": sweeps}), indent=2))
        return EXIT_OK
    if not rows:
        print("no experiments yet; start one with: stagelab run --demo")
    for exp in rows:
        parent = f"  (clone of {exp['parent_id']})" if exp["parent_id"] else ""
        print(f"{exp['id']}  {exp['name']}{parent}")
        for r in exp["runs"]:
            print(f"    run {r['number']:>3}  {r['id']}  {r['status']}")
    if sweeps:
        print("sweeps:")
    for sw in sweeps:
        best = sw["best"]
        shown = (
            f"best {best['objective']:.4g} (trial {best['number']})" if best else "no result yet"
        )
        print(
            f"  {sw['id']}  {sw['status']}  {sw['trials']} trial(s)  {sw['metric']}  {shown}"
            f"  experiment {sw['experiment_id']}"
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """`stagelab show RUN|SWEEP [--json]`."""
    _, store = open_workspace(args)
    try:
        run = queries.get_run(store, args.run)
    except queries.NotFound:
        try:
            sweep = queries.get_sweep(store, args.run)
        except queries.NotFound:
            raise UserError(
                f"no run '{args.run}' and no sweep of that id; see `stagelab ls`"
            ) from None
        except queries.StoreError as exc:
            raise UserError(str(exc)) from None
        return show_sweep(store, sweep, as_json=args.json)
    except queries.StoreError as exc:
        raise UserError(str(exc)) from None
    data = run_json(store, run)
    if args.json:
        # Strict JSON (jq, browsers): NaN and ±inf as "NaN", "Infinity", "-Infinity".
        print(json.dumps(json_safe(data), indent=2, allow_nan=False))
        return EXIT_OK
    print(f"run {data['id']} of '{data['experiment']['name']}': {data['status']}")
    print(f"  pid {data['pid']} on {data['host']}, gpus {data['gpus']}, folder {data['run_dir']}")
    if data["error"]:
        print(f"  error: {data['error']}")
    for warning in data["warnings"]:
        print(f"  {warning['level']}: {warning['message']}")
    for s in data["stages"]:
        progress = f"{s['steps_done'] or 0}/{s['total_steps'] or '?'} steps"
        metrics = ", ".join(
            f"{k} {v:.4g}" for k, v in sorted(s["metrics"].items()) if not k.startswith("perf/")
        )
        print(f"  [{s['index']}] {s['name']} ({s['kind']}): {s['status']}, {progress}  {metrics}")
        if s["reused_from"]:
            src = s["reused_from"]
            print(f"      reused from run {src['run']} stage {src['stage']} (not trained again)")
        for warning in s["warnings"]:
            print(f"      warning: {warning}")
        if s["outputs"] and s["outputs"] != [s["output_dir"]]:
            for folder in s["outputs"]:
                print(f"      output: {folder}")
        elif s["output_dir"]:
            print(f"      output: {s['output_dir']}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """`stagelab export RUN --metrics FILE.csv` (columns: stage, step, key, value, time)
    and/or `--plan FILE` (the plan text the run used, as stored)."""
    if not args.metrics and not args.plan:
        raise UserError("say what to export: --metrics FILE.csv and/or --plan FILE.yaml")
    _, store = open_workspace(args)
    run = lookup(queries.get_run, store, args.run)
    if args.plan:
        text = _plan_for_export(run)
        with open_for_writing(args.plan) as fh:
            fh.write(text)
        print(f"wrote the plan of run {run.id} to {args.plan}")
    if args.metrics:
        with open_for_writing(args.metrics) as fh:
            count = write_metrics_csv(store, run.id, fh)
        print(f"wrote {count} metric points of run {run.id} to {args.metrics}")
    return EXIT_OK


def _plan_for_export(run: Any) -> str:
    """The run's plan text; relative data and model paths become absolute, so the file
    runs from wherever it is written."""
    from engine.spec import parse_plan_text
    from engine.spec.plan import dump_yaml

    data = parse_plan_text(run.plan_text)
    base = Path(run.plan_dir)
    changed = False
    for stage in data.get("stages", []):
        for source in _sources(stage):
            path = source.get("path")
            if isinstance(path, str) and not Path(path).expanduser().is_absolute():
                source["path"] = str((base / path).resolve())
                changed = True
    return dump_yaml(data) if changed else run.plan_text


def _sources(stage: Any) -> list[dict[str, Any]]:
    found = []
    if not isinstance(stage, dict):
        return found
    for key in ("model", "teacher", "data"):
        if isinstance(stage.get(key), dict):
            found.append(stage[key])
    for member in stage.get("members") or []:
        if isinstance(member, dict):
            found.append(member)
            found += _sources(member)
    return found


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
