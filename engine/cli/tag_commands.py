"""`stagelab tag`, `untag`, `note` and `ls --where`: a run's tags and note, and the runs a
search matches (the language of the window's runs table: engine/store/search.py)."""

from __future__ import annotations

import argparse
import json
import sys

from engine.channel.protocol import json_safe
from engine.cli.cli_args import EXIT_OK, UserError, open_workspace


def add_tag_parsers(sub) -> None:
    """The parsers of `tag`, `untag` and `note`."""
    p = sub.add_parser("tag", help="add tags to a run (search them with ls --where tag:NAME)")
    p.add_argument("run")
    p.add_argument("names", nargs="+", metavar="NAME")
    p = sub.add_parser("untag", help="remove tags from a run")
    p.add_argument("run")
    p.add_argument("names", nargs="+", metavar="NAME")
    p = sub.add_parser("note", help="set a run's note ('' clears it)")
    p.add_argument("run")
    p.add_argument("text", help="the note; quote it")


def _edit(args: argparse.Namespace, fn) -> tuple[str, ...]:
    from engine.store.records import StoreError
    from engine.store.tags import TagError

    _, store = open_workspace(args)
    try:
        return fn(store, args.run, args.names)
    except (StoreError, TagError) as exc:
        raise UserError(str(exc)) from None


def cmd_tag(args: argparse.Namespace) -> int:
    """`stagelab tag RUN NAME…`: prints the run's tags now."""
    from engine.store.tags import tag_run

    print(" ".join(_edit(args, tag_run)))
    return EXIT_OK


def cmd_untag(args: argparse.Namespace) -> int:
    """`stagelab untag RUN NAME…`: prints the run's tags now (nothing if none)."""
    from engine.store.tags import untag_run

    print(" ".join(_edit(args, untag_run)))
    return EXIT_OK


def cmd_note(args: argparse.Namespace) -> int:
    """`stagelab note RUN TEXT`."""
    from engine.store.records import StoreError
    from engine.store.tags import set_run_note

    _, store = open_workspace(args)
    try:
        set_run_note(store, args.run, args.text)
    except StoreError as exc:
        raise UserError(str(exc)) from None
    return EXIT_OK


def runs_where(args: argparse.Namespace) -> int:
    """`stagelab ls --where QUERY [--json]`: the matching runs, newest first, one a line:
    id, status, experiment and number, tags, the final values of the metrics the query
    compares, the note's first line."""
    from sqlalchemy import select

    from engine.store.models import SqlExperiment, SqlLatestMetric, SqlRun
    from engine.store.search import SearchError, parse, search_runs
    from engine.store.status import effective_status
    from engine.store.tags import tags_of_runs

    _, store = open_workspace(args)
    try:
        ids = search_runs(store, args.where)
    except SearchError as exc:
        raise UserError(f"{exc} (see docs/cli.md, Search)") from None
    keys = sorted({t.name for t in parse(args.where) if t.kind == "metric"})
    with store.session() as s:
        rows = (
            {
                r.id: r
                for r in s.execute(
                    select(
                        SqlRun.id,
                        SqlRun.number,
                        SqlRun.status,
                        SqlRun.note,
                        SqlRun.target,
                        SqlRun.pid,
                        SqlRun.host,
                        SqlRun.heartbeat_ms,
                        SqlExperiment.id.label("experiment_id"),
                        SqlExperiment.name,
                    )
                    .join(SqlExperiment, SqlExperiment.id == SqlRun.experiment_id)
                    .where(SqlRun.id.in_(ids))
                )
            }
            if ids
            else {}
        )
        finals: dict[str, dict[str, float | None]] = {}
        if keys and ids:
            for run_id, key, value in s.execute(
                select(SqlLatestMetric.run_id, SqlLatestMetric.key, SqlLatestMetric.value)
                .where(SqlLatestMetric.run_id.in_(ids), SqlLatestMetric.key.in_(keys))
                .order_by(SqlLatestMetric.stage_idx)
            ):
                finals.setdefault(run_id, {})[key] = value  # the last stage's wins
    tags = tags_of_runs(store, ids) if ids else {}
    out = []
    for run_id in ids:
        r = rows[run_id]
        out.append(
            {
                "id": run_id,
                "experiment": {"id": r.experiment_id, "name": r.name},
                "number": r.number,
                "status": effective_status(
                    r.status, r.pid, r.host, r.heartbeat_ms, mirrored=r.target is not None
                ),
                "target": r.target,
                "tags": list(tags.get(run_id, ())),
                "note": r.note,
                "metrics": finals.get(run_id, {}),
            }
        )
    if args.json:
        print(json.dumps(json_safe({"runs": out}), indent=2, allow_nan=False))
        return EXIT_OK
    if not out:
        print("no run matches", file=sys.stderr)
    for run in out:
        words = [run["id"], f"{run['status']:<11}", f"{run['experiment']['name']} #{run['number']}"]
        if run["tags"]:
            words.append("[" + ", ".join(run["tags"]) + "]")
        words += [
            f"{k} {v:.4g}" if v is not None else f"{k} nan" for k, v in run["metrics"].items()
        ]
        if run["note"]:
            words.append("· " + run["note"].splitlines()[0][:60])
        print("  ".join(words))
    return EXIT_OK
