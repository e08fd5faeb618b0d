"""`stagelab target add|ls|check|rm`: the places runs can train (docs/targets.md)."""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli.cli_args import EXIT_BAD_INPUT, EXIT_OK, UserError, open_workspace

SLURM_SETTINGS = (
    ("--partition", str, "Slurm partition"),
    ("--nodes", int, "nodes of a run"),
    ("--gpus-per-node", int, "GPUs per node (one process each)"),
    ("--cpus-per-task", int, "CPUs per task"),
    ("--time", str, "time limit, such as 4:00:00"),
    ("--account", str, "account to charge"),
    ("--qos", str, "quality of service"),
)


def add_target_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    """The `target` command and its subcommands."""
    p = sub.add_parser("target", help="places runs can train: SSH machines, Slurm clusters")
    tsub = p.add_subparsers(dest="target_command", metavar="SUBCOMMAND", required=True)
    add = tsub.add_parser(
        "add",
        help="add a target: ssh://[user@]host[:port], slurm://, slurm+ssh://[user@]login-host",
    )
    add.add_argument("name")
    add.add_argument("url")
    add.add_argument(
        "--workdir", help="folder there for Stagelab, files and runs (default ~/.stagelab)"
    )
    add.add_argument("--python", help="Python there (default python3)")
    add.add_argument("--identity", metavar="FILE", help="SSH private key (default: ssh's own)")
    add.add_argument(
        "--ssh-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an OpenSSH option for this target (repeat), such as ProxyJump=gateway",
    )
    for flag, kind, text in SLURM_SETTINGS:
        add.add_argument(flag, type=kind, help=f"Slurm: {text}")
    add.add_argument(
        "--sbatch", action="append", default=[], metavar="LINE", help="Slurm: an extra #SBATCH line"
    )
    ls = tsub.add_parser("ls", help="the targets")
    ls.add_argument("--json", action="store_true")
    check = tsub.add_parser(
        "check", help="connect, install this Stagelab there if needed, list GPUs and disk"
    )
    check.add_argument("name")
    rm = tsub.add_parser("rm", help="forget a target (its runs keep its name)")
    rm.add_argument("name")


def cmd_target(args: argparse.Namespace) -> int:
    """`stagelab target …`; exit 2 with one sentence when the target cannot be used."""
    from engine.remote import targets
    from engine.remote.setup import SetupError
    from engine.remote.shell import ShellError
    from engine.store import queries

    workspace, store = open_workspace(args)
    try:
        if args.target_command == "add":
            slurm = {
                flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
                for flag, _, _ in SLURM_SETTINGS
                if getattr(args, flag[2:].replace("-", "_")) is not None
            }
            if args.sbatch:
                slurm["sbatch"] = list(args.sbatch)
            options = {
                "workdir": args.workdir,
                "python": args.python,
                "identity": args.identity,
                "ssh_options": args.ssh_option,
                "slurm": slurm,
            }
            target = targets.add_target(store, targets.make_target(args.name, args.url, options))
            print(
                f"target '{target.name}' added ({target.kind} on {target.where}); "
                f"check it with: stagelab target check {target.name}"
            )
        elif args.target_command == "ls":
            found = targets.list_targets(store)
            if args.json:
                checks = {i.name: i.options.get("last_check") for i in queries.list_targets(store)}
                rows = [
                    {"name": t.name, "url": t.url, "kind": t.kind, **t.options()}
                    | {"last_check": checks.get(t.name)}  # the window's Check, or target check
                    for t in found
                ]
                print(json.dumps(rows, indent=2))
            for t in [] if args.json else found:
                print(f"{t.name}\t{t.url}\t{t.workdir}")
            if not found and not args.json:
                print("no targets; add one with: stagelab target add NAME ssh://host")
        elif args.target_command == "check":
            from engine.remote.target_checks import run_check

            target = targets.get_target(store, args.name)
            # As the window's Check: Slurm's partitions too, the outcome kept (last_check).
            run_check(store, target, workspace.root / "cache" / "wheels")
            print(f"target '{target.name}' is ready")
        else:
            queries.remove_target(store, args.name)
            print(f"target '{args.name}' removed")
    except (targets.TargetError, SetupError, ShellError, queries.StoreError) as exc:
        raise UserError(str(exc).strip("'\"")) from None
    sys.stdout.flush()
    return EXIT_OK


def run_on_target(args: argparse.Namespace, workspace, store, text: str, plan_dir: str):  # noqa: ANN001
    """`stagelab run PLAN --target NAME`: a RemoteStart (with `proc` None: the local record
    is followed, which the mirror writes)."""
    from types import SimpleNamespace

    from tqdm import tqdm

    from engine.cli.cli_args import parse_gpus
    from engine.remote import targets
    from engine.remote.runs import start_remote_run

    if getattr(args, "nnodes", 1) > 1 or getattr(args, "node_rank", 0):
        raise UserError(
            "--target chooses the machines; --nnodes/--node-rank are for runs started here"
        )
    try:
        target = targets.get_target(store, args.target)
    except LookupError as exc:
        raise UserError(str(exc)) from None
    from engine.remote import slurm_runs

    if getattr(args, "dry_run", False):  # the batch script, shown; nothing sent
        if not slurm_runs.is_slurm(target):
            raise UserError(f"--dry-run shows a Slurm job's script; '{target.name}' is ssh://")
        script, problems = slurm_runs.dry_run(
            workspace, target, plan_text=text, plan_dir=plan_dir, nproc=args.nproc, name=args.name
        )
        if script is not None:
            print(script, end="")
        return SimpleNamespace(run_id=None, proc=None, problems=problems, dry_run=True)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total:
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="files", file=sys.stderr)
        if bar is not None:
            bar.update(done - bar.n)

    started = start_remote_run(
        workspace,
        store,
        target,
        plan_text=text,
        plan_dir=plan_dir,
        name=args.name,
        gpus=parse_gpus(args.gpus),
        nproc=args.nproc,
        use_cache=not args.no_cache,
        progress=progress,
    )
    if bar is not None:
        bar.close()
    if started.run_id and not started.problems:
        print(f"run {started.run_id} started on {target.where} ({target.name})", file=sys.stderr)
    return SimpleNamespace(run_id=started.run_id, proc=None, problems=started.problems)


def resume_on_target(args: argparse.Namespace, workspace, store, run, follow) -> int:  # noqa: ANN001
    """`stagelab resume RUN` of a run on a target (its --nproc checked and stored already):
    a paused one goes on live through its mirror; an interrupted, stopped or failed one is
    continued there from its checkpoint (engine/remote/runs.py) and followed here through
    the record its mirror writes."""
    from engine.cli.commands import NOT_RESUMABLE
    from engine.cli.watch import attached, resume_live
    from engine.remote.runs import resume_remote_run
    from engine.store import queries
    from engine.store.status import RESUMABLE, RunStatus

    if getattr(args, "nnodes", 1) > 1 or getattr(args, "node_rank", 0):
        raise UserError(
            "a run on a target resumes on its target; --nnodes/--node-rank are for runs here"
        )
    if run.status == RunStatus.QUEUED:
        # Waiting there (a Slurm queue, an engine starting): it starts by itself, and the
        # contact below would wait with it.
        where = (run.placement.get("slurm") or {}).get("reason")
        said = f" (Slurm: {where})" if where else ""
        raise UserError(
            f"run {run.id} is queued on target '{run.target}'{said}: it has not started "
            f"yet and starts by itself; follow it with `stagelab watch {run.id}`, or end it "
            f"with `stagelab stop {run.id}`"
        )
    if run.status not in RESUMABLE:
        # What this machine last heard may be old (no mirror ran since): the next contact
        # tells, as `watch` would (an engine gone there makes the run interrupted).
        attached(store, run)
        run = queries.get_run(store, run.id)
    if run.status == RunStatus.PAUSED:
        return resume_live(run)
    if run.status not in RESUMABLE:
        hint = NOT_RESUMABLE.get(run.status, f"its status is {run.status}")
        raise UserError(f"run {run.id} cannot be resumed: {hint}")
    started = resume_remote_run(
        workspace, store, run.id, nproc=args.nproc, say=lambda line: print(line, file=sys.stderr)
    )
    if started.problems:
        print(f"run {run.id}: nothing was resumed:", file=sys.stderr)
        for problem in started.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return follow(store, run.id, None, detach=args.detach)
