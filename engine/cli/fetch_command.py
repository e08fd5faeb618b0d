"""`stagelab fetch RUN[:STAGE]`: bring a remote run's stage outputs home (docs/targets.md,
engine/remote/fetch.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0


def add_fetch_parser(sub: Any) -> None:
    """The `fetch` subcommand's arguments."""
    p = sub.add_parser(
        "fetch",
        help="copy a remote run's stage outputs here (RUN: every finished stage; RUN:STAGE)",
    )
    p.add_argument("run", metavar="RUN[:STAGE]")
    p.add_argument("--json", action="store_true", help="what was fetched, as JSON")


def cmd_fetch(args: argparse.Namespace) -> int:
    """`stagelab fetch`; exit 2 with one sentence when nothing can be fetched."""
    from tqdm import tqdm

    from engine.cli.cli_args import UserError, open_workspace
    from engine.remote.fetch import FetchError, fetch_outputs
    from engine.remote.shell import ShellError
    from engine.store import queries

    workspace, store = open_workspace(args)
    run_ref, _, stage = args.run.partition(":")
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total:
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="fetch", file=sys.stderr)
        if bar is not None:
            bar.update(done - bar.n)

    say = (lambda _: None) if args.json else print
    try:
        fetched = fetch_outputs(
            workspace, store, run_ref, stage or None, progress=progress, say=say
        )
    except (FetchError, ShellError, queries.StoreError) as exc:
        raise UserError(str(exc).strip("'\"")) from None
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        rows = [
            {"stage": f.stage, "folder": str(f.folder), "files": f.files, "bytes": f.size,
             "sent": f.sent}
            for f in fetched
        ]  # fmt: skip
        print(json.dumps(rows, indent=2))
    return EXIT_OK
