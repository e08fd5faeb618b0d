"""The `stagelab` commands other than the window. Each returns an exit code:
0 ok, 1 the run failed, 2 bad input. No torch here: training is a child process."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import alembic.util
import sqlalchemy.exc

from engine.channel.protocol import json_safe
from engine.cli.launch import record_run, start_engine
from engine.cli.watch import LiveError, cmd_pause, cmd_stop, cmd_watch, resume_live  # noqa: F401
from engine.resources import demo_plan_path
from engine.spec import PlanInvalid, load_plan, load_plan_text
from engine.spec.plan import read_plan_file
from engine.store import Store, Workspace, queries
from engine.store.export import write_metrics_csv
from engine.store.workspace import default_workspace_root

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
RESUMABLE = ("interrupted", "stopped", "failed")


class UserError(Exception):
    """Bad input from the person; the message says what to do."""


def open_workspace(args: argparse.Namespace) -> tuple[Workspace, Store]:
    """The workspace named on the command line, in $STAGELAB_HOME, or the default one.

    Raises:
        UserError: if the folder cannot be created or its database cannot be opened.
    """
    root = args.workspace
    named = root or default_workspace_root()
    where = "with --workspace DIR" + ("" if root else " or $STAGELAB_HOME")
    try:
        workspace = Workspace.open(root)
    except OSError as exc:
        blocker = _first_non_folder(Path(named).expanduser())
        if blocker is not None:
            raise UserError(
                f"workspace {named}: {blocker} is not a folder; name a workspace folder {where}"
            ) from None
        raise UserError(
            f"workspace {named} cannot be created ({exc.strerror or exc}); "
            f"choose another folder {where}"
        ) from None
    db = workspace.db_path
    try:
        return workspace, Store.open(db)
    except sqlalchemy.exc.DatabaseError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if "not a database" in reason or "malformed" in reason:
            raise UserError(
                f"{db} is not a Stagelab database ({reason}); move it aside or choose another "
                f"workspace {where}"
            ) from None
        raise UserError(
            f"the workspace database {db} cannot be opened ({reason}); check the folder's "
            f"permissions or choose another workspace {where}"
        ) from None
    except alembic.util.CommandError as exc:
        raise UserError(
            f"the workspace database {db} cannot be read by this version of Stagelab ({exc}); "
            f"update Stagelab or choose another workspace {where}"
        ) from None
    except OSError as exc:
        raise UserError(
            f"the workspace database {db} cannot be opened ({exc.strerror or exc}); "
            f"choose another workspace {where}"
        ) from None


def _first_non_folder(path: Path) -> Path | None:
    """`path` or the first of its parents that exists but is not a folder."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            return part
    return None


def _open_for_writing(path: Path) -> Any:
    """Open a file the person named for writing.

    Raises:
        UserError: with what is wrong with the path and what to do.
    """
    try:
        return open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (returned)
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; name a file such as {path / 'metrics.csv'}") from None
    except FileNotFoundError:
        raise UserError(
            f"cannot write {path}: the folder {path.parent} does not exist; create it or "
            "choose another file"
        ) from None
    except NotADirectoryError:
        blocker = _first_non_folder(path.parent) or path.parent
        raise UserError(
            f"cannot write {path}: {blocker} is not a folder; choose another file"
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot write {path} ({exc.strerror or exc}); choose another file"
        ) from None


def _lookup(fn: Any, store: Store, ref: str) -> Any:
    try:
        return fn(store, ref)
    except queries.StoreError as exc:
        raise UserError(str(exc)) from None


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
    """`stagelab run PLAN [--name N] [--gpus G] [--detach]`."""
    if args.demo == bool(args.plan):
        raise UserError("give a plan file or --demo (not both)")
    path = demo_plan_path() if args.demo else args.plan
    try:
        text = read_plan_file(path)
        plan = load_plan_text(text, source=Path(path).name, plan_dir=Path(path).resolve().parent)
    except PlanInvalid as exc:
        print(f"{path}: {len(exc.problems)} problem(s); nothing was started:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    gpus = _parse_gpus(args.gpus)
    workspace, store = open_workspace(args)
    run_id = record_run(
        workspace,
        store,
        name=args.name or plan.name,
        plan_text=text,
        plan_dir=str(Path(path).resolve().parent),
        gpus=gpus,
    )
    return _launch(workspace, store, run_id, resume=False, detach=args.detach)


def _parse_gpus(value: str) -> str:
    value = value.strip().lower()
    if value == "cpu":
        return "cpu"
    parts = [p.strip() for p in value.split(",")]
    if not all(p.isdigit() for p in parts):
        raise UserError(f"--gpus must be 'cpu' or GPU indices such as '0' or '0,1' (got '{value}')")
    return ",".join(parts)


def _launch(workspace: Workspace, store: Store, run_id: str, *, resume: bool, detach: bool) -> int:
    proc = start_engine(workspace, run_id, resume=resume, detach=detach)
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
    run = _lookup(queries.get_run, store, args.run)
    if run.status == "paused":
        return resume_live(run)
    if run.status not in RESUMABLE:
        hint = {
            "finished": "it has finished; clone its experiment to run it again",
            "running": "it is running",
            "queued": "it has not started yet",
        }.get(run.status, f"its status is {run.status}")
        raise UserError(f"run {run.id} cannot be resumed: {hint}")
    return _launch(workspace, store, run.id, resume=True, detach=args.detach)


def cmd_clone(args: argparse.Namespace) -> int:
    """`stagelab clone EXPERIMENT [--name N]`."""
    _, store = open_workspace(args)
    source = _lookup(queries.get_experiment, store, args.experiment)
    new_id = queries.clone_experiment(store, source.id, args.name)
    print(new_id)
    return EXIT_OK


def run_json(store: Store, run: Any) -> dict[str, Any]:
    """The documented JSON of one run (docs/cli.md)."""
    experiment = queries.get_experiment(store, run.experiment_id)
    stages = queries.list_stages(store, run.id)
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
                "metrics": s.final_metrics or {},
            }
            for s in stages
        ],
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
    if args.json:
        print(json.dumps({"experiments": rows}, indent=2))
        return EXIT_OK
    if not rows:
        print("no experiments yet; start one with: stagelab run --demo")
    for exp in rows:
        parent = f"  (clone of {exp['parent_id']})" if exp["parent_id"] else ""
        print(f"{exp['id']}  {exp['name']}{parent}")
        for r in exp["runs"]:
            print(f"    run {r['number']:>3}  {r['id']}  {r['status']}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """`stagelab show RUN [--json]`."""
    _, store = open_workspace(args)
    run = _lookup(queries.get_run, store, args.run)
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
        if s["output_dir"]:
            print(f"      output: {s['output_dir']}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """`stagelab export RUN --metrics FILE.csv` (columns: stage, step, key, value, time)."""
    _, store = open_workspace(args)
    run = _lookup(queries.get_run, store, args.run)
    with _open_for_writing(args.metrics) as fh:
        count = write_metrics_csv(store, run.id, fh)
    print(f"wrote {count} metric points of run {run.id} to {args.metrics}")
    return EXIT_OK


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
