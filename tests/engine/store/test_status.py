"""Statuses are enums whose members are the stored strings, and a stage update names only
fields the stage row has (issue 28: types at the seams)."""

from __future__ import annotations

import json

import pytest

from engine.store import Store, Workspace, queries
from engine.store.models import RUN_STATUSES, STAGE_STATUSES, SWEEP_STATUSES, TRIAL_STATUSES
from engine.store.status import ENDED, LIVE, NOT_ENDED, RESUMABLE, RunStatus, StageStatus


@pytest.fixture
def run(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "e", "name: e\nstages: []\n", str(tmp_path))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(tmp_path), gpus="cpu", runs_dir=workspace.runs_dir
    )
    yield store, run_id
    store.close()


def test_enum_members_are_the_stored_strings_in_the_schema_order():
    # The CHECK constraints (and so the migrations' literal lists) are unchanged.
    assert RUN_STATUSES == (
        "queued", "running", "paused", "stopping", "stopped", "finished", "failed", "interrupted",
    )  # fmt: skip
    assert STAGE_STATUSES == (
        "pending", "running", "finished", "failed", "stopped", "skipped", "reused",
    )  # fmt: skip
    assert SWEEP_STATUSES == ("running", "finished", "stopped", "failed")
    assert TRIAL_STATUSES == ("running", "finished", "pruned", "failed", "stopped")
    assert json.dumps({"status": RunStatus.PAUSED}) == '{"status": "paused"}'
    assert f"{StageStatus.REUSED}" == "reused" and "running" in LIVE
    assert LIVE | {RunStatus.QUEUED} == NOT_ENDED and not NOT_ENDED & ENDED
    assert RESUMABLE == ENDED - {RunStatus.FINISHED}
    assert set(RunStatus) == NOT_ENDED | ENDED


def test_a_stored_status_reads_back_as_the_plain_string(run):
    store, run_id = run
    queries.upsert_stage(store, run_id, 0, name="s", kind="train", status=StageStatus.RUNNING)
    queries.set_run_status(store, run_id, RunStatus.STOPPED)
    (stage,) = queries.list_stages(store, run_id)
    assert type(stage.status) is str and stage.status == "running"
    info = queries.get_run(store, run_id)
    assert info.status == "stopped" and info.ended_ms is not None


def test_a_misspelt_stage_field_is_an_error_naming_it(run):
    store, run_id = run
    queries.upsert_stage(store, run_id, 0, name="s", kind="train", status="running")
    with pytest.raises(TypeError, match="'stpes_done'"):
        queries.upsert_stage(store, run_id, 0, stpes_done=5)
    with pytest.raises(ValueError, match="finshed"):
        queries.upsert_stage(store, run_id, 0, status="finshed")
    queries.upsert_stage(store, run_id, 0, steps_done=5, status="finished")
    (stage,) = queries.list_stages(store, run_id)
    assert (stage.steps_done, stage.status) == (5, "finished")
