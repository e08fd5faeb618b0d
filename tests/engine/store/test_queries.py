"""Store behaviour on real SQLite files: experiments, runs, stages, metrics, checkpoints,
events, run status, and two processes writing at once."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys

import pytest

from engine.store import Store, Workspace, queries


@pytest.fixture
def ws(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    return workspace, Store.open(workspace.db_path)


def new_run(ws, name="exp"):
    workspace, store = ws
    exp = queries.create_experiment(store, name, "name: x\n", "/plans", tags=["b", "a"], notes="n")
    run = queries.create_run(
        store, exp, plan_text="name: x\n", plan_dir="/plans", gpus="0", runs_dir=workspace.runs_dir
    )
    return exp, run


def test_experiments_crud_tags_notes_and_delete_cascades(ws):
    _, store = ws
    exp, run = new_run(ws)
    info = queries.get_experiment(store, exp)
    assert (info.name, info.tags, info.notes, info.plan_dir) == ("exp", ("a", "b"), "n", "/plans")
    assert [r.id for r in info.runs] == [run]
    queries.update_experiment(store, exp, name="renamed", notes="better", tags=["z"])
    info = queries.get_experiment(store, "renamed")
    assert (info.notes, info.tags) == ("better", ("z",))
    queries.add_metrics(store, run, [(0, "train/loss", 1, 0.5, 1)])
    queries.delete_experiment(store, exp)
    assert queries.list_experiments(store) == []
    with pytest.raises(queries.NotFound):
        queries.get_run(store, run)
    assert queries.latest_metrics(store, run) == []  # cascaded


def test_clone_keeps_plan_and_records_the_parent(ws):
    _, store = ws
    exp, _ = new_run(ws)
    clone = queries.clone_experiment(store, exp)
    info = queries.get_experiment(store, clone)
    assert info.parent_id == exp and info.name == "exp (clone)" and info.plan_text == "name: x\n"
    assert info.tags == ("a", "b") and info.runs == ()
    named = queries.clone_experiment(store, exp, "second try")
    assert queries.get_experiment(store, named).name == "second try"


def test_references_by_prefix_and_clear_errors(ws):
    _, store = ws
    exp, run = new_run(ws)
    assert queries.get_run(store, run[:6]).id == run
    assert queries.get_experiment(store, exp[:5]).id == exp
    with pytest.raises(queries.NotFound, match="stagelab ls"):
        queries.get_run(store, "nothing")
    # A taken name gets a number, so a name on the command line names one experiment.
    again = queries.create_experiment(store, "exp", "", "/")
    assert queries.get_experiment(store, again).name == "exp (2)"
    assert queries.get_experiment(store, "exp").id == exp
    third = queries.create_experiment(store, "exp", "", "/")
    assert queries.get_experiment(store, third).name == "exp (3)"
    # Stores written before names were numbered may hold two of one name.
    from engine.store.models import SqlExperiment

    with store.session() as s:
        s.get(SqlExperiment, again).name = "exp"
    with pytest.raises(queries.Ambiguous, match="give the id"):
        queries.get_experiment(store, "exp")


def test_run_numbers_count_up_per_experiment(ws):
    workspace, store = ws
    exp, first = new_run(ws)
    second = queries.create_run(
        store, exp, plan_text="", plan_dir="/", gpus="cpu", runs_dir=workspace.runs_dir
    )
    assert [r.number for r in queries.list_runs(store, exp)] == [1, 2]
    assert (workspace.runs_dir / second).is_dir()


def test_metrics_batches_latest_values_and_truncate(ws):
    _, store = ws
    _, run = new_run(ws)
    queries.upsert_stage(store, run, 0, name="a", kind="pretrain", status="running")
    queries.upsert_stage(store, run, 1, name="b", kind="train", status="pending")
    queries.add_metrics(store, run, [(0, "train/loss", s, 10.0 - s, s) for s in range(1, 10_001)])
    queries.add_metrics(store, run, [(1, "train/loss", s, 1.0, s) for s in range(1, 6)])
    latest = {(m.stage_idx, m.key): (m.step, m.value) for m in queries.latest_metrics(store, run)}
    assert latest == {(0, "train/loss"): (10_000, -9990.0), (1, "train/loss"): (5, 1.0)}
    # An older point arriving late does not move the latest value back.
    queries.add_metrics(store, run, [(0, "train/loss", 3, 123.0, 3)])
    latest = {(m.stage_idx, m.key): m.step for m in queries.latest_metrics(store, run)}
    assert latest[(0, "train/loss")] == 10_000
    queries.truncate_metrics_after(store, run, 0, 500)
    steps, values = queries.read_series(store, run, "train/loss")
    assert steps == list(range(1, 501)) and values[2] == 123.0
    latest = {(m.stage_idx, m.key): m.step for m in queries.latest_metrics(store, run)}
    assert latest == {(0, "train/loss"): 500}
    rows = queries.export_metrics_rows(store, run)
    assert rows[0][:4] == ("a", 1, "train/loss", 9.0)


def test_downsampling_keeps_the_spike(ws):
    _, store = ws
    _, run = new_run(ws)
    queries.upsert_stage(store, run, 0, name="a", kind="train", status="running")
    points = [(0, "train/loss", s, 1.0, s) for s in range(1, 100_001)]
    points[77_776] = (0, "train/loss", 77_777, 50.0, 1)
    points[12_344] = (0, "train/loss", 12_345, -5.0, 1)
    queries.add_metrics(store, run, points)
    steps, values = queries.read_series(store, run, "train/loss", max_points=1000)
    assert len(steps) <= 1000
    assert max(values) == 50.0 and steps[values.index(50.0)] == 77_777
    assert min(values) == -5.0
    assert steps == sorted(steps)


def test_stages_checkpoints_and_events(ws, tmp_path):
    _, store = ws
    _, run = new_run(ws)
    queries.upsert_stage(store, run, 0, name="a", kind="pretrain", status="pending")
    queries.upsert_stage(
        store,
        run,
        0,
        status="finished",
        steps_done=7,
        total_steps=7,
        output_dir="/out",
        final_metrics={"eval/loss": 1.5},
    )
    [stage] = queries.list_stages(store, run)
    assert (stage.status, stage.steps_done, stage.final_metrics) == (
        "finished",
        7,
        {"eval/loss": 1.5},
    )
    for step in (2, 4):
        folder = tmp_path / f"c{step}"
        folder.mkdir()
        queries.add_checkpoint(store, run, 0, step, str(folder))
    assert queries.latest_checkpoint(store, run).step == 4
    (tmp_path / "c4").rmdir()  # a checkpoint whose folder is gone is never resumed from
    assert queries.latest_checkpoint(store, run).step == 2
    queries.add_events(
        store,
        run,
        [
            {
                "kind": "eval",
                "message": "m1",
                "stage_idx": 0,
                "data": {"confusion_matrix": [[1, 0], [0, 1]]},
            },
            {"kind": "log", "message": "m2", "level": "warning"},
        ],
    )
    evals = queries.list_events(store, run, kind="eval")
    assert evals[0].data == {"confusion_matrix": [[1, 0], [0, 1]]}
    assert [e.message for e in queries.list_events(store, run, after_id=evals[0].id)] == ["m2"]


def test_dead_engine_or_stale_heartbeat_reads_as_interrupted(ws):
    _, store = ws
    _, run = new_run(ws)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    queries.claim_run(store, run, pid=dead.pid, host=socket.gethostname())
    assert queries.get_run(store, run).status == "interrupted"
    assert queries.get_run(store, run).stored_status == "running"
    queries.claim_run(store, run, pid=os.getpid(), host=socket.gethostname())
    assert queries.get_run(store, run).status == "running"
    assert queries.effective_status("running", 1, "other-host", 0, now_ms=11_000) == "interrupted"
    assert queries.effective_status("running", 1, "other-host", 5_000, now_ms=11_000) == "running"
    assert queries.effective_status("finished", None, None, None) == "finished"


def test_a_live_run_cannot_be_claimed_twice(ws):
    _, store = ws
    _, run = new_run(ws)
    queries.claim_run(store, run, pid=os.getpid(), host=socket.gethostname())
    with pytest.raises(queries.RunBusy, match="already running"):
        queries.claim_run(store, run, pid=os.getppid(), host=socket.gethostname(), resuming=True)
    assert queries.get_run(store, run).resume_count == 0


def _writer(db_path: str, run_id: str, stage: int, n: int) -> None:
    store = Store.open(db_path)
    for i in range(n):
        queries.add_metrics(
            store, run_id, [(stage, "train/loss", i * 10 + k, 1.0, 1) for k in range(10)]
        )
        queries.heartbeat(store, run_id)
        queries.add_events(store, run_id, [{"kind": "log", "message": str(i)}])


def test_two_processes_write_and_read_at_once_without_locking_errors(ws):
    workspace, store = ws
    _, run = new_run(ws)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(str(workspace.db_path), run, s, 150)) for s in (0, 1)
    ]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):  # read-modify-write from this process meanwhile
        queries.update_experiment(store, queries.get_run(store, run).experiment_id, notes="busy")
        queries.latest_metrics(store, run)
    assert [p.exitcode for p in procs] == [0, 0]
    for stage in (0, 1):
        steps, _ = queries.read_series(store, run, "train/loss", stage_idx=stage)
        assert steps == list(range(1500))
    assert len(queries.list_events(store, run)) == 300


def test_placement_merges_keys_and_targets_are_stored_by_name(tmp_path):
    store = Store.open(tmp_path / "s.db")
    exp = queries.create_experiment(store, "e", "name: e", str(tmp_path))
    run_id = queries.create_run(
        store,
        exp,
        plan_text="name: e",
        plan_dir=str(tmp_path),
        gpus="cpu",
        runs_dir=tmp_path / "runs",
        target="box",
        placement={"kind": "ssh", "host": "box"},
        run_id="abcdef012345",
    )
    assert run_id == "abcdef012345"
    queries.set_placement(store, run_id, remote_run_id=run_id, host=None)
    run = queries.get_run(store, run_id)
    assert run.target == "box"
    assert run.placement == {"kind": "ssh", "remote_run_id": run_id}
    queries.add_target(store, "box", "ssh://me@box:2222", {"workdir": "/w"})
    with pytest.raises(queries.StoreError):
        queries.add_target(store, "box", "ssh://other", {})
    assert [t.name for t in queries.list_targets(store)] == ["box"]
    assert queries.get_target(store, "box").options == {"workdir": "/w"}
    queries.remove_target(store, "box")
    with pytest.raises(queries.NotFound):
        queries.get_target(store, "box")
