"""`python -m engine record --workspace W --run ID --after SEQ`: a run's record after a
stream position, as JSON lines, for a mirror on another machine to pull.

Lines, in this order: one `run` (status as the engine's liveness makes it, the stored
status, pid, host, times, environment, the highest stored position and how many points
and events are stored), one `stage` per stage row (every column), the `point`s and
`event`s after SEQ in stream order, and `end`, which says the output is whole. The run
row is read first: a run read as ended has every item stored already (the engine stores
them before its final status). Non-finite values are written as JSON's NaN/Infinity
tokens, which Python reads back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.remote.mirror_store import counts
from engine.store import queries
from engine.store.db import Store
from engine.store.models import SqlStage
from engine.store.status import LIVE

CHUNK = 5000  # items read from the store per step
EVENT_KEYS = ("seq", "stage", "kind", "level", "message", "data", "wall_ms")
POINT_KEYS = ("seq", "stage", "key", "step", "value", "wall_ms")


def record_lines(store: Store, run_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
    """The record of `run_id` after stream position `after`, line by line.

    Raises:
        queries.NotFound: no such run in this workspace.
    """
    run = queries.get_run(store, run_id)
    upto = queries.max_seq(store, run.id)
    points, events = counts(store, run.id)
    with store.session() as s:
        stages = s.scalars(
            select(SqlStage).where(SqlStage.run_id == run.id).order_by(SqlStage.idx)
        ).all()
        stage_rows = [
            {c.key: getattr(row, c.key) for c in SqlStage.__table__.columns if c.key != "id"}
            for row in stages
        ]
    yield {
        "what": "run",
        "id": run.id,
        "status": run.status,
        "stored_status": run.stored_status,
        "alive": run.status in LIVE,
        "pid": run.pid,
        "host": run.host,
        "heartbeat_ms": run.heartbeat_ms,
        "error": run.error,
        "started_ms": run.started_ms,
        "ended_ms": run.ended_ms,
        "environment": run.environment,
        "resume_count": run.resume_count,
        "max_seq": upto,
        "points": int(points),
        "events": int(events),
    }
    for row in stage_rows:
        row.pop("run_id", None)
        yield {"what": "stage", **row}
    cursor = after
    while True:
        items = queries.stream_after(store, run.id, cursor, upto, CHUNK)
        for item in items:
            keys = POINT_KEYS if item[0] == "point" else EVENT_KEYS
            yield {"what": item[0], **dict(zip(keys, item[1:], strict=True))}
        if len(items) < CHUNK:
            break
        cursor = items[-1][1]
    yield {"what": "end", "upto": upto}


def dump_record(workspace: Path, run_id: str, after: int, write: Callable[[str], Any]) -> int:
    """Write the record's lines of a run of the workspace with `write`; returns 0, or 2
    when the workspace or the run is unknown (one `missing` line says so)."""
    db_path = Path(workspace).expanduser() / "stagelab.db"
    try:
        if not db_path.is_file():
            raise queries.NotFound(f"no workspace at {workspace}")
        for line in record_lines(Store.open(db_path), run_id, after):
            write(json.dumps(line) + "\n")
    except queries.NotFound:
        write(json.dumps({"what": "missing", "id": run_id}) + "\n")
        return 2
    return 0


def parse_record(lines: Any) -> dict[str, Any]:
    """Pulled lines (text lines) as {"run", "stages", "items", "complete", "missing"}:
    items in the shapes of `queries.stream_after`; `complete` only when `end` came."""
    out: dict[str, Any] = {
        "run": None,
        "stages": {},
        "items": [],
        "complete": False,
        "missing": False,
    }
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        line = json.loads(raw)
        what = line.pop("what", None)
        if what == "run":
            out["run"] = line
        elif what == "stage":
            out["stages"][line.pop("idx")] = line
        elif what == "point":
            out["items"].append(("point", *(line[k] for k in POINT_KEYS)))
        elif what == "event":
            out["items"].append(("event", *(line[k] for k in EVENT_KEYS)))
        elif what == "end":
            out["complete"] = True
        elif what == "missing":
            out["missing"] = True
    return out
