"""One rule for a run's steps done and total (issue 28): `stagelab run`'s bars (the store),
`stagelab watch` (the channel), the channel's own `progress` frames and the window's
monitor agree, on a plan with an early-stopped stage, an ensemble and a pending stage."""

from __future__ import annotations

import io

import pytest

from app.model.run_series import RunSeries
from app.qt.monitor.qt_history_loader import planned_stages
from engine.channel.messages import parse_message
from engine.channel.progress import ProgressTracker
from engine.cli.follow import planned_steps_of, run_progress
from engine.cli.watch import TerminalView
from engine.store import Store, Workspace, queries

PLAN = """\
name: totals
stages:
  - {name: cls, kind: train, max_steps: 10}
  - {name: vote, kind: ensemble, members: [cls]}
  - {name: polish, kind: train, batch_size: 4, data: {path: rows.csv}}
"""


@pytest.fixture
def run(tmp_path):
    rows = "text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(48))
    (tmp_path / "rows.csv").write_text(rows)
    ws = Workspace.open(tmp_path / "ws")
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "totals", PLAN, str(tmp_path))
    run_id = queries.create_run(
        store, exp, plan_text=PLAN, plan_dir=str(tmp_path), gpus="cpu", runs_dir=ws.runs_dir
    )
    # cls stopped early after 8 of its 10 steps; the ensemble and polish have not started.
    queries.upsert_stage(
        store, run_id, 0, name="cls", kind="train", status="finished", total_steps=10, steps_done=8
    )
    queries.upsert_stage(store, run_id, 1, name="vote", kind="ensemble", status="pending")
    queries.upsert_stage(store, run_id, 2, name="polish", kind="train", status="pending")
    yield store, run_id
    store.close()


def window_total(store, run_id, messages=()) -> tuple[int, int | None]:
    series = RunSeries(run_id)
    series.plan_stages(planned_stages(queries.get_run(store, run_id)))
    for stage in queries.list_stages(store, run_id):
        series.update_stage(stage.__dict__)
    for message in messages:
        series.apply(parse_message(message))
    return series.overall()


def watch_view(store, run_id) -> TerminalView:
    rows = queries.list_stages(store, run_id)
    stages = [
        {k: getattr(s, k) for k in ("idx", "name", "kind", "status", "total_steps", "steps_done")}
        for s in rows
    ]
    welcome = parse_message(
        {"type": "welcome", "version": 1, "run_id": run_id, "engine_id": "e", "first_seq": 1,
         "last_seq": 0, "status": "running", "stages": stages}
    )  # fmt: skip
    return TerminalView(welcome, io.StringIO(), planned=planned_steps_of(store, run_id))


def test_cli_watch_and_window_agree_before_a_stage_has_started(run):
    store, run_id = run
    # polish: 48 rows, 10 % held out for evaluation and 10 % for test (ceil) -> 38 rows,
    # batches of 4 -> 10 steps; the ensemble trains none; cls counts the 8 it took.
    assert planned_steps_of(store, run_id) == [10, 0, 10]
    cli = run_progress(queries.list_stages(store, run_id), planned_steps_of(store, run_id))
    assert cli == (8, 18)  # the CLI counted the pending stage as 0 (8, 8) before
    assert window_total(store, run_id) == cli
    assert watch_view(store, run_id).overall_steps() == cli


def test_every_reader_agrees_while_the_last_stage_runs(run):
    store, run_id = run
    updates = [
        {"type": "stage", "idx": 1, "status": "finished", "total_steps": 0, "steps_done": 0},
        {"type": "stage", "idx": 2, "status": "running", "total_steps": 10, "steps_done": 0},
    ]
    progress = {"type": "progress", "stage": 2, "step": 5, "total": 10}
    view = watch_view(store, run_id)
    tracker = ProgressTracker()
    tracker.stage({"idx": 0, "status": "finished", "total_steps": 10, "steps_done": 8})
    for update in updates:
        view.show(parse_message(update))
        tracker.stage({k: v for k, v in update.items() if k != "type"})
        queries.upsert_stage(store, run_id, update["idx"], **{
            k: v for k, v in update.items() if k not in ("type", "idx")
        })  # fmt: skip
    tracker.step(2, 5)
    view.show(parse_message(progress))
    queries.upsert_stage(store, run_id, 2, steps_done=5)
    frame = tracker.frame("running")
    assert (frame["overall_step"], frame["overall_total"]) == (13, 18)
    assert view.overall_steps() == (13, 18)
    assert window_total(store, run_id, [progress]) == (13, 18)
    assert run_progress(queries.list_stages(store, run_id), planned_steps_of(store, run_id)) == (
        13,
        18,
    )
