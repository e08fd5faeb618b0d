"""What a mirrored record must equal: the run's status, every stage row, every point and
event with its stream position, the latest values; and each point once."""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.remote.record_dump import record_lines
from engine.store import Store, queries


def wait_for(check, timeout: float = 240, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def record(store: Store, run_id: str) -> dict:
    lines = list(record_lines(store, run_id))
    run = {k: lines[0][k] for k in ("status", "error", "max_seq", "points", "events")}
    latest = sorted(
        (m.stage_idx, m.key, m.step, m.wall_ms) for m in queries.latest_metrics(store, run_id)
    )
    return {
        "run": run,
        "stages": [line for line in lines if line["what"] == "stage"],
        "items": json.dumps([line for line in lines if line["what"] in ("point", "event")]),
        "latest": latest,
    }


def assert_same_record(there: Store, here: Store, run_id: str) -> None:
    a, b = record(there, run_id), record(here, run_id)
    assert b["run"] == a["run"]
    assert b["stages"] == a["stages"]
    assert b["latest"] == a["latest"]
    assert b["items"] == a["items"]
    seqs = [line["seq"] for line in json.loads(b["items"])]
    assert len(seqs) == len(set(seqs)) == b["run"]["points"] + b["run"]["events"]


def stage_points(store: Store, run_id: str, stage: int) -> int:
    return len(queries.read_series(store, run_id, "train/loss", stage_idx=stage)[0])


def processes_with(text: str) -> list[int]:
    """Pids of this machine's processes whose command line holds `text`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found
