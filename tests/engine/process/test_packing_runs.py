"""A packed instruction-tuning stage (LoRA, as llm.yaml's) through the real CLI and engine
subprocess (issue 32, item 2): it trains the steps it counted before its first step (fewer
than unpacked: its packed sequences), and SIGKILL in the middle, then resume, equals an
uninterrupted run."""

from __future__ import annotations

import json

import pytest

PACKED = """
name: packed-sft
stages:
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {builtin: gpt2-tiny, vocab_size: 300}
    data: {path: instructions.jsonl, prompt_column: prompt, response_column: response, max_length: 32, eval_ratio: 0.2}
    packing: true
    adapter: {rank: 4}
    epochs: 2
    batch_size: 4
    log_every_steps: 2
    optimizer: {lr: 0.005}
    eval: {every_steps: 8, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 4}
"""


@pytest.mark.slow
def test_a_packed_stage_counts_its_steps_and_resumes_exactly(tmp_path, data_dir):
    from engine.spec.plan_steps import PACKED_ESTIMATE, planned_steps
    from engine.spec.schedule import stage_steps
    from engine.store import Store, queries
    from tests.engine.process.live_kill import kill_mid_stage
    from tests.engine.process.test_runs import export, show, stagelab, wait_for

    plan_file = data_dir / f"packed-{tmp_path.name}.yaml"
    plan_file.write_text(PACKED)
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "reference")
    ref_id = json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][0]["runs"][0]["id"]
    store = Store.open(ws / "stagelab.db")
    [packed] = [
        e for e in queries.list_events(store, ref_id, kind="data") if "packing" in e.message
    ]
    sequences, rows = packed.data["sequences"], packed.data["rows"]
    assert sequences < rows  # several rows per sequence

    import yaml

    raw = yaml.safe_load(PACKED)["stages"][0]
    stage = show(ws, ref_id)["stages"][0]
    from engine.spec.stages import StageBase

    counted = stage_steps(
        StageBase.model_validate({"name": "x", "epochs": 2, "batch_size": 4}), sequences
    )
    # The count the engine announced before its first step is the steps it trained.
    assert stage["total_steps"] == stage["steps_done"] == counted
    ours = export(ws, ref_id, tmp_path / "reference.csv")
    assert max(step for _, step, key, _ in ours if key == "train/loss") == counted
    # The plan's count before the run is the unpacked one, said to be an upper bound.
    upper, why = planned_steps(raw, data_dir)
    assert why == PACKED_ESTIMATE and upper > counted

    run_id = stagelab(
        ws, "run", str(plan_file), "--name", "killed", "--detach", "--no-cache"
    ).stdout.strip()
    kill_mid_stage(ws, run_id, 0)
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout
    [resumed] = queries.list_events(store, run_id, kind="resume")
    assert "step 0" not in resumed.message  # continued mid-stage, from a checkpoint
    assert export(ws, run_id, tmp_path / "resumed.csv") == ours
