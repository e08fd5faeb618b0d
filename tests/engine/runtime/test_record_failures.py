"""The record keeps every point: NaN and ±inf are stored like any value, a database that
refuses writes for a while delays them (with a warning) and loses nothing, rows refused for
their content are set aside while the rest is stored, checkpoint rows wait for their points,
and a run whose data cannot be written never ends `finished`.

Every failure here really happens in SQLite: a second connection holds the write lock, or a
trigger refuses rows."""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runtime.recorder import Recorder
from engine.store import Store, Workspace, queries


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A store that gives up on a held lock after 0.2 s, and a run with one stage."""
    monkeypatch.setenv("STAGELAB_BUSY_TIMEOUT_MS", "200")
    ws = Workspace.open(tmp_path / "ws")
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "e", "name: e\nstages: []\n", str(tmp_path))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(tmp_path), gpus="cpu", runs_dir=ws.runs_dir
    )
    queries.upsert_stage(store, run_id, 0, name="s", kind="train", status="running")
    run_dir = Path(queries.get_run(store, run_id).run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    yield store, run_id, run_dir, ws.db_path
    store.close()


def test_nan_and_infinities_are_recorded_like_any_value(run):
    store, run_id, run_dir, _ = run
    recorder = Recorder(store, run_id, run_dir=run_dir)
    values = [0.7, math.nan, math.inf, -math.inf, 0.2]
    recorder.series(0, "train/loss", [1, 2, 3, 4, 5], values)
    recorder.metrics(0, 5, {"eval/loss": math.nan})
    assert recorder.flush() and recorder.write_errors == 0
    steps, got = queries.read_series(store, run_id, "train/loss")
    assert steps == [1, 2, 3, 4, 5]
    assert [repr(v) for v in got] == ["0.7", "nan", "inf", "-inf", "0.2"]
    assert math.isnan(queries.read_series(store, run_id, "eval/loss")[1][0])


def test_a_locked_database_delays_points_with_a_warning_and_loses_none(run):
    store, run_id, run_dir, db_path = run
    recorder = Recorder(store, run_id, run_dir=run_dir, flush_every=0.1, warn_after=0.5)
    seen: list[dict] = []
    recorder.listeners.append(lambda kind, payload: kind == "event" and seen.append(payload))
    recorder.start()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held
    try:
        for step in range(1, 201):
            recorder.metrics(0, step, {"train/loss": 1.0 / step})
            if step == 100:
                recorder.checkpoint(0, 100, str(run_dir / "ckpt-100"))
            time.sleep(0.005)
        warning = wait_for(
            lambda: [e for e in seen if e["kind"] == "store" and e["level"] == "warning"],
            10,
            "the warning about failing writes",
        )[0]
        assert "database is locked" in warning["message"]
        assert recorder.pending > 0 and recorder.write_errors >= 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert recorder.close(timeout=10)
    steps, values = queries.read_series(store, run_id, "train/loss")
    assert steps == list(range(1, 201)) and values == [1.0 / s for s in steps]
    assert [(c.step, c.path) for c in queries.list_checkpoints(store, run_id)] == [
        (100, str(run_dir / "ckpt-100"))
    ]
    stored = [e.message for e in queries.list_events(store, run_id, kind="store")]
    assert any("have failed" in m for m in stored) and any("work again" in m for m in stored)
    from engine.cli.commands import run_json  # what `stagelab show` prints

    shown = run_json(store, queries.get_run(store, run_id))["warnings"]
    assert [w["level"] for w in shown] == ["warning", "warning"]


def test_rows_refused_for_their_content_are_set_aside_and_the_rest_stored(run):
    store, run_id, run_dir, db_path = run
    con = sqlite3.connect(db_path)
    con.execute(
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON metric_chunks WHEN NEW.key = 'bad/key' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
    )
    con.commit()
    con.close()
    recorder = Recorder(store, run_id, run_dir=run_dir)
    for step in range(1, 51):
        recorder.metrics(0, step, {"train/loss": float(step), "train/lr": 0.1})
    recorder.metrics(0, 50, {"bad/key": 1.0})
    recorder.event("log", "fine")
    recorder.event("log", "an event of an unknown level", level="shouting")  # CHECK fails
    recorder.checkpoint(0, 50, str(run_dir / "ckpt-50"))
    assert recorder.flush()  # all taken rows stored or set aside; the reports come next
    assert recorder.close(timeout=5)
    assert queries.read_series(store, run_id, "train/loss")[0] == list(range(1, 51))
    assert queries.read_series(store, run_id, "train/lr")[0] == list(range(1, 51))
    assert queries.read_series(store, run_id, "bad/key")[0] == []
    assert [e.message for e in queries.list_events(store, run_id, kind="log")] == ["fine"]
    errors = [e for e in queries.list_events(store, run_id, kind="store") if e.level == "error"]
    assert sorted(e.data["what"] for e in errors) == ["events", "metric points"]
    rejected = [json.loads(line) for line in (run_dir / "rejected.jsonl").read_text().splitlines()]
    assert [r["what"] for r in rejected] == ["metric points", "events"]
    assert rejected[0]["row"][1] == "bad/key" and "test trigger" in rejected[0]["error"]
    assert queries.list_checkpoints(store, run_id)[0].step == 50
    assert recorder.set_aside == 2


def test_heartbeat_goes_on_while_the_points_are_refused(run):
    store, run_id, run_dir, db_path = run
    con = sqlite3.connect(db_path)
    con.execute(
        "CREATE TRIGGER refuse_all BEFORE INSERT ON metric_chunks "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    con.commit()
    recorder = Recorder(store, run_id, run_dir=run_dir)
    recorder.metrics(0, 1, {"train/loss": 1.0})
    recorder.flush()
    beat = queries.get_run(store, run_id).heartbeat_ms
    assert beat is not None and beat > time.time() * 1000 - 5000


def test_close_says_when_the_database_never_took_the_data(run):
    store, run_id, run_dir, db_path = run
    recorder = Recorder(store, run_id, run_dir=run_dir)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    recorder.metrics(0, 1, {"train/loss": 1.0})
    recorder.checkpoint(0, 1, str(run_dir / "ckpt-1"))
    try:
        assert recorder.close(timeout=0.5) is False
        assert recorder.pending == 2
        assert recorder.dump_pending(run_dir / "unwritten.jsonl") == 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert queries.list_checkpoints(store, run_id) == []  # never a row past its points


# --- whole runs ---------------------------------------------------------------------------

DIVERGING = """
name: diverge
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 16
    log_every_steps: 4
    max_grad_norm: null
    optimizer: {name: sgd, lr: 10.0, momentum: 0.9}
    eval: {every_steps: 8, metrics: [loss, perplexity, accuracy]}
    checkpoint: {every_steps: 8}
"""


def cli(ws: Path, *args: str, env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_id_of(ws: Path) -> str:
    listing = json.loads(cli(ws, "ls", "--json").stdout)
    return listing["experiments"][0]["runs"][-1]["id"]


@pytest.mark.slow
def test_a_diverging_run_finishes_with_every_step_stored_nan_included(tmp_path, data_dir):
    plan = data_dir / f"diverge-{tmp_path.name}.yaml"
    plan.write_text(DIVERGING)
    ws = tmp_path / "ws"
    proc = cli(ws, "run", str(plan))
    assert proc.returncode == 0, proc.stderr
    run_id = run_id_of(ws)
    shown = json.loads(cli(ws, "show", run_id, "--json").stdout)
    assert shown["status"] == "finished"
    assert shown["stages"][0]["metrics"]["train/loss"] == "NaN"  # strict JSON, no bare NaN
    out = tmp_path / "m.csv"
    assert cli(ws, "export", run_id, "--metrics", str(out)).returncode == 0
    with open(out) as fh:
        rows = [r for r in csv.DictReader(fh) if r["key"] == "train/loss"]
    assert [int(r["step"]) for r in rows] == list(range(1, 17))  # every step, none dropped
    assert rows[-1]["value"] == "nan"  # diverged: stored, exported as nan
    assert all(float(r["value"]) > 0 for r in rows[:2])
    evals = [r["value"] for r in csv.DictReader(open(out)) if r["key"] == "eval/loss"]
    assert len(evals) == 2 and evals[-1] == "nan"
    text = cli(ws, "show", run_id).stdout
    assert "train/loss nan" in text


@pytest.mark.slow
def test_a_run_whose_data_cannot_be_written_never_ends_finished(tmp_path, data_dir):
    plan = data_dir / f"locked-{tmp_path.name}.yaml"
    plan.write_text(DIVERGING.replace("max_steps: 16", "max_steps: 48"))
    ws = tmp_path / "ws"
    engine = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), "run", str(plan)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "STAGELAB_BUSY_TIMEOUT_MS": "200", "STAGELAB_FINAL_FLUSH_S": "2"},
    )
    from tests.engine.process.live_kill import _connect, first_run_id, pause_after_checkpoint

    # Held over the live channel from the run's first moments, so the run cannot finish its
    # steps before the database is locked, however fast the machine (polling the store for
    # its first steps lost that race on a CI machine: all 48 were done before the test asked).
    run_id = first_run_id(ws, timeout=300)
    pause_after_checkpoint(ws, run_id, stage=0)
    store = Store.open(Workspace.open(ws).db_path)
    wait_for(lambda: queries.get_run(store, run_id).status == "paused", 60, "the pause")
    client = _connect(store, run_id, time.monotonic() + 60)
    holder = sqlite3.connect(Workspace.open(ws).db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # from now on the engine can write nothing
    client.control("resume")
    client.close()
    try:
        _, stderr = engine.communicate(timeout=300)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert engine.returncode == 1, stderr
    run = queries.get_run(store, run_id)
    log = (Path(run.run_dir) / "engine.log").read_text()
    assert "could not be written to the database" in log
    assert "interrupted" in stderr  # what the terminal says of the run it followed
    assert run.status != "finished"
    kept = [
        json.loads(line)
        for line in (Path(run.run_dir) / "unwritten.jsonl").read_text().splitlines()
    ]
    steps = {r["row"][2] for r in kept if r["what"] == "point" and r["row"][1] == "train/loss"}
    stored = set(queries.read_series(store, run_id, "train/loss")[0])
    assert stored | steps == set(range(1, 49)) and not stored & steps  # every step somewhere
