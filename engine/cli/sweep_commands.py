"""The sweep commands: `stagelab sweep`, `sweep-resume`, and sweeps in `show` and `ls`.
No torch here: trials run in engine processes started by the sweep driver."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.channel.protocol import json_safe
from engine.cli.cli_args import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    UserError,
    lookup,
    open_workspace,
    parse_gpus,
)
from engine.store.status import StageStatus

if TYPE_CHECKING:
    from engine.store import Store, Workspace

# The plan package (pydantic, ~0.3 s) loads in `sweep` only, and `queries` (numpy, ~0.2 s)
# in the functions that use it: `ls` lists sweeps with the sweeps module alone.


def sweep_summary(info: Any) -> dict[str, Any]:
    from engine.store.sweeps import best_trial

    best = best_trial(info)
    objective = info.spec["objective"]
    return {
        "id": info.id,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "metric": objective["metric"],
        "goal": objective.get("goal", "max"),
        "trials": len(info.trials),
        "best": (
            {"number": best.number, "run": best.run_id, "objective": best.objective}
            if best
            else None
        ),
        "created_ms": info.created_ms,
    }


def sweep_json(store: Store, info: Any) -> dict[str, Any]:
    """The documented JSON of one sweep (docs/sweeps.md)."""
    from engine.store import queries

    experiment = queries.get_experiment(store, info.experiment_id)
    objective = info.spec["objective"]
    trials = []
    for t in info.trials:
        run = queries.get_run(store, t.run_id) if t.run_id else None
        stages = queries.list_stages(store, t.run_id) if t.run_id else []
        trials.append(
            {
                "number": t.number,
                "run": t.run_id,
                "status": t.status,
                "run_status": run.status if run else None,
                "params": t.params,
                "objective": t.objective,
                "intermediate": [list(p) for p in t.intermediate],
                "reused_stages": [s.name for s in stages if s.status == StageStatus.REUSED],
                "trained_stages": [s.name for s in stages if s.status == StageStatus.FINISHED],
                "wall_s": (
                    (run.ended_ms - run.started_ms) / 1000
                    if run and run.ended_ms and run.started_ms
                    else None
                ),
                "stage_wall_s": {
                    s.name: (s.ended_ms - s.started_ms) / 1000
                    for s in stages
                    if s.ended_ms and s.started_ms
                },
            }
        )
    best = queries.best_trial(info)
    return {
        "id": info.id,
        "type": "sweep",
        "experiment": {"id": experiment.id, "name": experiment.name},
        "status": info.status,
        "stop_reason": info.stop_reason,
        "objective": objective,
        "sampler": info.spec.get("sampler"),
        "budget": info.spec.get("budget"),
        "space": info.spec.get("space"),
        "parallel": info.parallel,
        "gpus": info.gpus,
        "cache": info.use_cache,
        "pid": info.pid,
        "created_ms": info.created_ms,
        "started_ms": info.started_ms,
        "ended_ms": info.ended_ms,
        "trials": trials,
        "best": (
            {
                "number": best.number,
                "run": best.run_id,
                "objective": best.objective,
                "params": best.params,
            }
            if best
            else None
        ),
    }


def show_sweep(store: Store, info: Any, *, as_json: bool) -> int:
    data = sweep_json(store, info)
    if as_json:
        print(json.dumps(json_safe(data), indent=2, allow_nan=False))
        return EXIT_OK
    obj = data["objective"]
    target = f", target {obj['target']}" if obj.get("target") is not None else ""
    print(
        f"sweep {data['id']} of '{data['experiment']['name']}': {data['status']}"
        + (f" ({data['stop_reason']})" if data["stop_reason"] else "")
    )
    print(f"  objective: {obj.get('goal', 'max')} {obj['stage']}.{obj['metric']}{target}")
    for t in data["trials"]:
        value = "—" if t["objective"] is None else f"{t['objective']:.4g}"
        params = ", ".join(
            f"{p.rsplit('.', 1)[-1]}={v:.4g}"
            if isinstance(v, float)
            else f"{p.rsplit('.', 1)[-1]}={v}"
            for p, v in t["params"].items()
        )
        reused = f"  reused: {', '.join(t['reused_stages'])}" if t["reused_stages"] else ""
        wall = f"  {t['wall_s']:.0f}s" if t["wall_s"] is not None else ""
        print(f"  trial {t['number']:>3}  {t['status']:<8} {value:>8}  {params}{wall}{reused}")
    if data["best"]:
        b = data["best"]
        print(f"  best: trial {b['number']} (run {b['run']}) {b['objective']:.4g}")
    return EXIT_OK


def load_sweep_plan(path: Path, trials: int | None = None) -> tuple[dict[str, Any], Path]:
    """Plain data of a plan with a sweep section, and its folder: a plan file with `sweep:`,
    or a sweep file naming its plan (`plan: demo.yaml` and the sweep's keys).

    Raises:
        PlanInvalid: the file cannot be read, or has no sweep.
    """
    from engine.spec import PlanInvalid, parse_plan_text
    from engine.spec.plan import read_plan_file
    from engine.spec.problems import Problem

    data = parse_plan_text(read_plan_file(path), source=Path(path).name)
    plan_dir = Path(path).resolve().parent
    if "stages" not in data and isinstance(data.get("plan"), str):
        plan_path = plan_dir / data["plan"]
        sweep = {k: v for k, v in data.items() if k != "plan"}
        data = parse_plan_text(read_plan_file(plan_path), source=plan_path.name)
        data["sweep"] = sweep
        plan_dir = plan_path.resolve().parent
    if not isinstance(data.get("sweep"), dict):
        raise PlanInvalid(
            [
                Problem(
                    "sweep",
                    "missing: add a sweep: section (objective, budget, space) to the plan, "
                    "or give a sweep file with plan: <plan file> (see docs/sweeps.md)",
                )
            ]
        )
    if trials is not None:
        data["sweep"].setdefault("budget", {})["trials"] = trials
    return data, plan_dir


def cmd_sweep(args: argparse.Namespace) -> int:
    """`stagelab sweep PLAN [--trials N] [--parallel N] [--gpus G] [--detach] [--no-cache]`."""
    from engine.spec import PlanInvalid, plan_from_data
    from engine.spec.plan import dump_yaml

    if args.trials is not None and args.trials < 1:
        raise UserError("--trials must be at least 1")
    if args.parallel < 1:
        raise UserError("--parallel must be at least 1")
    try:
        data, plan_dir = load_sweep_plan(Path(args.plan), args.trials)
        plan = plan_from_data(data, plan_dir)
    except PlanInvalid as exc:
        print(f"{args.plan}: {len(exc.problems)} problem(s); nothing was started:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    gpus = parse_gpus(args.gpus)
    workspace, store = open_workspace(args)
    from engine.launch.sweeps import record_sweep

    sweep_id = record_sweep(
        store,
        name=args.name or f"{plan.name} sweep",
        plan_text=dump_yaml(data),
        plan_dir=str(plan_dir),
        spec=plan.sweep.model_dump(mode="json"),
        gpus=gpus,
        parallel=args.parallel,
        use_cache=not args.no_cache,
    )
    return _start_sweep(workspace, sweep_id, detach=args.detach)


def _start_sweep(workspace: Workspace, sweep_id: str, *, detach: bool) -> int:
    print(sweep_id, flush=True)
    if detach:
        from engine.launch.sweeps import start_sweep_process

        start_sweep_process(workspace, sweep_id)
        return EXIT_OK
    from engine.sweep.process import run_sweep

    code = run_sweep(workspace.root, sweep_id)
    print(f"see: stagelab show {sweep_id}")
    return code


def cmd_sweep_resume(args: argparse.Namespace) -> int:
    """`stagelab sweep-resume SWEEP`: continue a killed or stopped sweep where it was."""
    from engine.store import queries

    workspace, store = open_workspace(args)
    info = lookup(queries.get_sweep, store, args.sweep)
    from engine.launch.sweeps import why_not_resumable

    problem = why_not_resumable(info)
    if problem is not None:
        raise UserError(problem)
    return _start_sweep(workspace, info.id, detach=args.detach)
