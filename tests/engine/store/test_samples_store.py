"""Sample outputs read back from a run's `samples` events (issue 31, item 3): by stage and
step, the latest answers of a step recorded twice (a resumed stage), other events and
malformed data left out, and the JSON lines of `stagelab export --samples`."""

from __future__ import annotations

import io
import json

from engine.store import Store, Workspace, queries
from engine.store.samples import write_samples_jsonl


def _event(stage_idx: int, step: int, output: str, stage: str = "s") -> dict:
    row = {"row": 0, "input": "a text", "output": output, "score": 0.75, "target": "pos"}
    data = {"step": step, "stage": stage, "task": "classify", "rows": [row]}
    return {"stage_idx": stage_idx, "kind": "samples", "message": "m", "data": data}


def test_samples_by_stage_and_step_with_the_latest_answers_kept(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "e", "name: x\n", "/plans")
    run = queries.create_run(
        store,
        exp,
        plan_text="name: x\n",
        plan_dir="/plans",
        gpus="cpu",
        runs_dir=workspace.runs_dir,
    )
    queries.add_events(
        store,
        run,
        [
            _event(1, 4, "late", stage="t"),
            _event(0, 4, "first try"),
            _event(0, 2, "early"),
            {"stage_idx": 0, "kind": "eval", "message": "step 4", "data": {"step": 4}},
            {"stage_idx": 0, "kind": "samples", "message": "odd", "data": {"rows": "x"}},
            _event(0, 4, "resumed"),  # the stage resumed before step 4 answered again
        ],
    )
    found = queries.list_samples(store, run)
    assert [(c.stage_idx, c.step, c.rows[0].output) for c in found] == [
        (0, 2, "early"),
        (0, 4, "resumed"),
        (1, 4, "late"),
    ]
    assert [c.step for c in queries.list_samples(store, run, stage_idx=1)] == [4]
    out = io.StringIO()
    assert write_samples_jsonl(store, run, out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[2] == {
        "stage_idx": 1,
        "stage": "t",
        "step": 4,
        "task": "classify",
        "row": 0,
        "input": "a text",
        "output": "late",
        "score": 0.75,
        "target": "pos",
    }
