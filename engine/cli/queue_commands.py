"""`stagelab queue add|ls|rm|run`: plans left to run one after another (docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from engine.cli.cli_args import EXIT_BAD_INPUT, EXIT_OK, UserError, open_workspace, parse_gpus


def add_queue_parser(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    """The `queue` command and its subcommands."""
    p = sub.add_parser("queue", help="plans left to run one after another (add, ls, rm, run)")
    qsub = p.add_subparsers(dest="queue_command", metavar="SUBCOMMAND", required=True)
    add = qsub.add_parser("add", help="put a plan at the end of the queue")
    add.add_argument("plan", type=Path, help="plan file (read again when its turn comes)")
    add.add_argument("--target", metavar="NAME", help="train on a target (`stagelab target ls`)")
    add.add_argument("--gpus", default="cpu", help="'cpu' or GPU indices such as '0' or '0,1'")
    ls = qsub.add_parser("ls", help="the queue: waiting, running and ended items")
    ls.add_argument("--json", action="store_true")
    rm = qsub.add_parser("rm", help="take a waiting item out of the queue")
    rm.add_argument("item", type=int, help="the item's number (`stagelab queue ls`)")
    run = qsub.add_parser("run", help="run the waiting items, going on past a failed one")
    run.add_argument(
        "--detach", action="store_true", help="run the queue in the background and return"
    )


def cmd_queue(args: argparse.Namespace) -> int:
    """`stagelab queue …`; exit 2 with one sentence for bad input."""
    from engine.store import queries
    from engine.store import queue as q

    workspace, store = open_workspace(args)
    try:
        if args.queue_command == "add":
            return _add(args, store)
        if args.queue_command == "ls":
            return _ls(args, store)
        if args.queue_command == "rm":
            q.remove_queue_item(store, args.item)
            print(f"queue item {args.item} removed")
            return EXIT_OK
    except queries.StoreError as exc:
        raise UserError(str(exc).strip("'\"")) from None
    from engine.queue.runner import run_queue, runner_alive, start_detached

    if args.detach:
        if runner_alive(workspace.root):
            print("the queue runs already; what you add starts in its turn")
            return EXIT_OK
        proc = start_detached(workspace.root)
        print(f"queue runner started (pid {proc.pid}); its log: {workspace.root / 'queue.log'}")
        return EXIT_OK
    code = run_queue(workspace.root, lambda line: print(line, flush=True))
    return EXIT_BAD_INPUT if code == 2 else code


def _add(args: argparse.Namespace, store) -> int:  # noqa: ANN001
    from engine.spec import PlanInvalid, load_plan
    from engine.store import queue as q

    path = args.plan.expanduser().resolve()
    if not path.is_file():
        raise UserError(f"no plan file {args.plan}; give the path of a YAML or JSON plan")
    try:
        load_plan(path)
    except PlanInvalid as exc:
        print(f"{args.plan}: {len(exc.problems)} problem(s); nothing was queued:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target:
        from engine.remote.targets import TargetError, get_target

        try:
            get_target(store, args.target)
        except (LookupError, TargetError) as exc:
            raise UserError(str(exc).strip("'\"")) from None
    item = q.add_queue_item(store, str(path), target=args.target, gpus=parse_gpus(args.gpus))
    print(f"queue item {item.id}: {path} (start the queue with `stagelab queue run`)")
    return EXIT_OK


def _ls(args: argparse.Namespace, store) -> int:  # noqa: ANN001
    from dataclasses import asdict

    from engine.store import queue as q

    items = q.list_queue(store)
    if args.json:
        print(json.dumps([asdict(i) for i in items], indent=2))
        return EXIT_OK
    if not items:
        print("the queue is empty; add a plan with: stagelab queue add PLAN")
    for i in items:
        where = i.target or ("cpu" if i.gpus == "cpu" else f"gpus {i.gpus}")
        when = time.strftime("%m-%d %H:%M", time.localtime(i.created_ms / 1000))
        run = i.run_id or "-"
        line = f"{i.id}\t{i.status}\t{where}\t{run}\t{when}\t{i.plan_path}"
        print(line + (f"\n\t{i.error}" if i.error else ""))
    return EXIT_OK
