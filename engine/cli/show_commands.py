"""`stagelab ls`, `show` and `export`: what the store holds about runs, read-only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.channel.protocol import json_safe
from engine.cli.cli_args import (
    EXIT_OK,
    UserError,
    lookup,
    open_for_writing,
    open_workspace,
)
from engine.cli.sweep_commands import show_sweep, sweep_summary
from engine.store.status import StageStatus

if TYPE_CHECKING:
    from engine.store import Store

# `ls` imports only the store modules it reads (experiments, runs, sweeps); the others
# import `queries`, whose metric modules load numpy (~0.2 s), inside their functions.


def run_json(store: Store, run: Any) -> dict[str, Any]:
    """The documented JSON of one run (docs/cli.md)."""
    from engine.spec.outputs import output_folders  # the plan package: not for `ls`
    from engine.store import queries

    experiment = queries.get_experiment(store, run.experiment_id)
    stages = queries.list_stages(store, run.id)
    # What a stage warned about while it trained (weights that started random, …).
    stage_warnings: dict[int, list[str]] = {}
    for e in queries.list_events(store, run.id, kind="model"):
        if e.level in ("warning", "error") and e.stage_idx is not None:
            stage_warnings.setdefault(e.stage_idx, []).append(e.message)
    # Steps that had nothing to learn from (no labelled position): counted at the stage's end.
    empty_steps: dict[int, int] = {}
    for e in queries.list_events(store, run.id, kind="empty_step"):
        if e.stage_idx is not None and e.data and "empty_steps" in e.data:
            empty_steps[e.stage_idx] = int(e.data["empty_steps"])
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
        "tags": list(run.tags),
        "note": run.note,
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
                "steps_without_targets": empty_steps.get(s.idx, 0),
            }
            for s in stages
        ],
        "cache": run.use_cache,
        "where": where_json(run),
    }


def where_json(run: Any) -> dict[str, Any]:
    """Where and how a run trained (issue 30): its target (None: this machine), the kind
    (local, ssh, slurm), the host, processes per node and nodes, the GPUs, the Slurm job."""
    placement = run.placement or {}
    return {
        "target": run.target,
        "kind": placement.get("kind") or ("local" if run.target is None else None),
        "host": placement.get("host") or run.host,
        "processes": run.nproc,
        "nodes": placement.get("nodes") or 1,
        "gpus": placement.get("gpus") or run.gpus,
        "remote_workspace": placement.get("remote_workspace"),
        "slurm": placement.get("slurm"),
    }


def where_words(where: dict[str, Any]) -> list[str]:
    """`show`'s lines for `where_json`: "on this machine (host), 2 processes, CPU"."""
    place = "this machine" if where["target"] is None else f"target '{where['target']}'"
    details = [d for d in (where["kind"] if where["target"] else None, where["host"]) if d]
    lines = [f"on {place}" + (f" ({', '.join(details)})" if details else "")]
    procs = where["processes"] or 1
    count = f"{procs} process{'es' if procs != 1 else ''}"
    if where["nodes"] > 1:
        count = f"{where['nodes']} nodes × {count}"
    gpus = "CPU" if where["gpus"] in ("", "cpu", None) else f"GPUs {where['gpus']}"
    lines[0] += f", {count}, {gpus}"
    job = where["slurm"] or {}
    if job.get("job_id"):
        words = f"Slurm job {job['job_id']}"
        if job.get("partition"):
            words += f" in partition {job['partition']}"
        if job.get("node_list"):
            words += f" on {job['node_list']}"
        if job.get("reason") and job["reason"] != "None":
            words += f" ({job['reason']})"
        lines.append(words)
    return lines


def cmd_ls(args: argparse.Namespace) -> int:
    """`stagelab ls [--json] [--where QUERY]`."""
    if getattr(args, "where", None) is not None:
        from engine.cli.tag_commands import runs_where

        return runs_where(args)
    from engine.store.experiments import list_experiments
    from engine.store.runs import list_runs
    from engine.store.sweeps import list_sweeps

    _, store = open_workspace(args)
    experiments = list_experiments(store)
    rows = []
    for exp in experiments:
        runs = list_runs(store, exp.id)
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
                        "tags": list(r.tags),
                    }
                    for r in runs
                ],
            }
        )
    sweeps = [sweep_summary(sw) for sw in list_sweeps(store)]
    if args.json:
        print(json.dumps(json_safe({"experiments": rows, "sweeps": sweeps}), indent=2))
        return EXIT_OK
    if not rows:
        print("no experiments yet; start one with: stagelab run --demo")
    for exp in rows:
        parent = f"  (clone of {exp['parent_id']})" if exp["parent_id"] else ""
        print(f"{exp['id']}  {exp['name']}{parent}")
        for r in exp["runs"]:
            tags = f"  [{', '.join(r['tags'])}]" if r["tags"] else ""
            print(f"    run {r['number']:>3}  {r['id']}  {r['status']}{tags}")
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
    from engine.store import queries

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
    for line in where_words(data["where"]):
        print(f"  {line}")
    if data["tags"]:
        print(f"  tags: {', '.join(data['tags'])}")
    if data["note"]:
        print(f"  note: {data['note']}")
    if data["error"]:
        print(f"  error: {data['error']}")
    for warning in data["warnings"]:
        print(f"  {warning['level']}: {warning['message']}")
    for s in data["stages"]:
        progress = _progress_words(s)
        metrics = ", ".join(
            f"{k} {v:.4g}" for k, v in sorted(s["metrics"].items()) if not k.startswith("perf/")
        )
        line = f"  [{s['index']}] {s['name']} ({s['kind']}): {s['status']}"
        print(f"{line}, {progress}  {metrics}" if progress else f"{line}  {metrics}".rstrip())
        if s["reused_from"]:
            print(f"      {_reused_words(store, run, s['reused_from'])}")
        for warning in s["warnings"]:
            print(f"      warning: {warning}")
        if s["outputs"] and s["outputs"] != [s["output_dir"]]:
            for folder in s["outputs"]:
                print(f"      output: {folder}")
        elif s["output_dir"]:
            print(f"      output: {s['output_dir']}")
    return EXIT_OK


def _progress_words(stage: dict[str, Any]) -> str:
    """A stage's steps in words that are true for it: "12/30 steps", "30 steps planned"
    before it starts, "evaluation only" for an ensemble (it has no steps), nothing where
    nothing is known yet."""
    if stage["kind"] in ("ensemble", "merge"):
        return "evaluation only"
    done, total = stage["steps_done"] or 0, stage["total_steps"]
    if stage["status"] == StageStatus.PENDING:
        return f"{total} steps planned" if total else ""
    if not done and total is None:
        return ""
    return f"{done}/{total if total is not None else '?'} steps"


def _reused_words(store: Store, run: Any, source: dict[str, Any]) -> str:
    """Which run's stage a reused stage is: "reused from run 1 (ab12…) stage 0", with the
    experiment's name when it is another experiment's run."""
    from engine.store import queries

    try:
        info = queries.get_run(store, source["run"])
    except queries.NotFound:
        return f"reused from run {source['run']} stage {source['stage']}, since deleted"
    where = f"run {info.number}"
    if info.experiment_id != run.experiment_id:
        where += f" of '{queries.get_experiment(store, info.experiment_id).name}'"
    return f"reused from {where} ({info.id}) stage {source['stage']} (not trained again)"


def cmd_export(args: argparse.Namespace) -> int:
    """`stagelab export RUN --metrics FILE.csv` (columns: stage, step, key, value, time),
    `--plan FILE` (the plan text the run used, as stored) and/or `--samples FILE.jsonl`
    (a line per stage, step and sample input). With --format: a stage's model
    (engine/cli/export_command.py)."""
    from engine.cli.export_command import cmd_export_model, split_targets
    from engine.store import queries
    from engine.store.export import write_metrics_csv
    from engine.store.samples import write_samples_jsonl

    split_targets(args)
    if getattr(args, "format", None) or args.out is not None:
        return cmd_export_model(args)
    if not args.metrics and not args.plan and not args.samples:
        raise UserError(
            "say what to export: --metrics FILE.csv, --plan FILE.yaml and/or --samples FILE.jsonl"
        )
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
    if args.samples:
        with open_for_writing(args.samples) as fh:
            count = write_samples_jsonl(store, run.id, fh)
        said = "" if count else " (none: the plan sets no eval.samples, or no evaluation ran)"
        print(f"wrote {count} sample outputs of run {run.id} to {args.samples}{said}")
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
