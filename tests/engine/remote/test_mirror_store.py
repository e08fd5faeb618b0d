"""The mirror's local writes: each item once by its stream position, truncations applied
where the remote engine applied them, live-only items dropped, stage and run rows set."""

from __future__ import annotations

import math

from engine.remote import mirror_store
from engine.remote.record_dump import parse_record, record_lines
from engine.store import Store, Workspace, queries
from engine.store.browse import browse_runs


def _run(root) -> tuple[Store, str]:
    ws = Workspace.open(root)
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "m", "", str(root))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=ws.runs_dir
    )
    return store, run_id


def _points(seq0: int, steps: range, value: float = 1.0, stage: int = 0) -> list[tuple]:
    return [
        ("point", seq0 + i, stage, "train/loss", step, value * step, 1000 + step)
        for i, step in enumerate(steps)
    ]


def _event(seq: int, kind: str, data=None, stage: int = 0) -> tuple:
    return ("event", seq, stage, kind, "info", f"{kind} {seq}", data, 5000 + seq)


def test_items_are_stored_once_in_stream_order(tmp_path):
    store, run_id = _run(tmp_path / "ws")
    batch = [*_points(1, range(1, 6)), _event(6, "eval", {"step": 5})]
    assert mirror_store.write(store, run_id, batch) == 6
    # The same span again (a pull after the live channel), and a later part.
    assert mirror_store.write(store, run_id, [*batch, *_points(7, range(6, 9))]) == 9
    assert mirror_store.counts(store, run_id) == (8, 1)
    steps, values = queries.read_series(store, run_id, "train/loss")
    assert steps == list(range(1, 9)) and values == [float(s) for s in range(1, 9)]
    latest = queries.latest_metrics(store, run_id)
    assert [(m.step, m.value, m.wall_ms) for m in latest] == [(8, 8.0, 1008)]
    assert [e.kind for e in queries.list_events(store, run_id)] == ["eval"]


def test_a_truncation_drops_what_is_trained_again_at_its_position(tmp_path):
    store, run_id = _run(tmp_path / "ws")
    # Steps 1..10 of stage 0, one of stage 1, then a resume from step 4 of stage 0: the
    # points after step 4 (and of stage 1) go, then steps 5..6 come again with new values.
    items = [*_points(1, range(1, 11)), *_points(11, range(1, 2), stage=1)]
    items += [_event(12, "truncated", {"stage": 0, "after_step": 4})]
    items += _points(13, range(5, 7), value=-1.0)
    mirror_store.write(store, run_id, items)
    steps, values = queries.read_series(store, run_id, "train/loss", stage_idx=0)
    assert steps == [1, 2, 3, 4, 5, 6] and values == [1, 2, 3, 4, -5, -6]
    assert queries.read_series(store, run_id, "train/loss", stage_idx=1) == ([], [])
    assert [(m.stage_idx, m.step) for m in queries.latest_metrics(store, run_id)] == [(0, 6)]


def test_drop_after_forgets_live_only_items(tmp_path):
    store, run_id = _run(tmp_path / "ws")
    items = [*_points(1, range(1, 4)), _event(4, "eval"), *_points(5, range(4, 7))]
    mirror_store.write(store, run_id, items)
    mirror_store.drop_after(store, run_id, 5)
    assert mirror_store.local_cursor(store, run_id) == 5
    assert queries.read_series(store, run_id, "train/loss")[0] == [1, 2, 3, 4]
    assert [(m.step) for m in queries.latest_metrics(store, run_id)] == [4]
    mirror_store.drop_after(store, run_id, 0)
    assert mirror_store.counts(store, run_id) == (0, 0)
    assert queries.latest_metrics(store, run_id) == []


def test_stage_rows_run_fields_and_the_record_round_trip(tmp_path):
    remote, run_id = _run(tmp_path / "a")
    queries.upsert_stage(remote, run_id, 0, name="s", kind="train", status="finished")
    queries.upsert_stage(remote, run_id, 0, final_metrics={"eval/loss": 0.5}, steps_done=3)
    queries.add_metrics(remote, run_id, [(0, "train/loss", 1, math.nan, 7, 1)])
    queries.add_metrics(remote, run_id, [(0, "train/loss", 2, math.inf, 8, 2)])
    queries.add_events(remote, run_id, [{"kind": "stage", "message": "done", "seq": 3}])
    queries.set_run_status(remote, run_id, "finished")
    record = parse_record(
        __import__("json").dumps(line, default=str) for line in record_lines(remote, run_id, 1)
    )
    assert record["complete"] and record["run"]["status"] == "finished"
    assert (record["run"]["points"], record["run"]["events"]) == (2, 1)
    assert [i[:2] for i in record["items"]] == [("point", 2), ("event", 3)]
    local, local_id = _run(tmp_path / "b")
    mirror_store.write(
        local, local_id, record["items"], record["stages"], {"status": "finished", "pid": 9}
    )
    stage = queries.list_stages(local, local_id)[0]
    assert (stage.name, stage.status, stage.steps_done) == ("s", "finished", 3)
    assert stage.final_metrics == {"eval/loss": 0.5}
    run = queries.get_run(local, local_id)
    assert run.status == "finished" and run.pid is None and run.ended_ms is not None
    assert queries.read_series(local, local_id, "train/loss") == ([2], [math.inf])


def test_a_run_on_a_target_keeps_the_status_its_mirror_stored(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "m", "", str(tmp_path))
    ids = [
        queries.create_run(
            store, exp, plan_text="", plan_dir="", gpus="cpu", runs_dir=ws.runs_dir, target=t
        )
        for t in ("box", None)
    ]
    for run_id in ids:  # live, a heartbeat long ago, no engine of ours
        mirror_store.write(store, run_id, run={"status": "running", "heartbeat_ms": 1})
    # The target's run goes on there until its mirror says otherwise; a local one is gone.
    assert [queries.get_run(store, i).status for i in ids] == ["running", "interrupted"]
    rows = {r.id: r.status for r in browse_runs(store)}
    assert [rows[i] for i in ids] == ["running", "interrupted"]
    assert [r.status for r in queries.get_experiment(store, exp).runs] == ["running", "interrupted"]


def test_a_fetched_output_keeps_its_local_folder_when_mirrored_again(tmp_path):
    store, run_id = _run(tmp_path / "ws")
    row = {"name": "mlm", "kind": "pretrain", "status": "finished", "output_dir": "/there/out"}
    mirror_store.write(store, run_id, stages={0: row})
    # `stagelab fetch` moved the output home; a later mirror (after a resume) says the
    # target's folder again.
    with store.session() as s:
        from engine.store.models import SqlStage

        s.query(SqlStage).filter_by(run_id=run_id, idx=0).update({"output_dir": "/here/out"})
    queries.set_placement(store, run_id, outputs={"mlm": "local"})
    mirror_store.write(store, run_id, stages={0: {**row, "steps_done": 7}})
    stage = queries.list_stages(store, run_id)[0]
    assert (stage.output_dir, stage.steps_done) == ("/here/out", 7)
    queries.set_placement(store, run_id, outputs={"mlm": "target"})
    mirror_store.write(store, run_id, stages={0: row})
    assert queries.list_stages(store, run_id)[0].output_dir == "/there/out"
