"""A LoRA stage through the real CLI and engine subprocess: SIGKILL in the middle of it,
resume, and the record and the adapters equal an uninterrupted run's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

RESUMABLE = """
name: lora-chain
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {builtin: gpt2-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 8
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {from_stage: lm}
    data: {path: instructions.jsonl, prompt_column: prompt, response_column: response, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 60
    log_every_steps: 4
    optimizer: {lr: 0.005}
    freezing: {layers: 1, unfreeze: {every_steps: 20}}
    eval: {every_steps: 15, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 10}
    adapter: {rank: 4, dropout: 0.1, output: adapter}
"""


@pytest.mark.slow
def test_sigkill_then_resume_of_a_lora_stage_equals_an_uninterrupted_run(tmp_path, data_dir):
    from engine.store import Store, queries
    from tests.engine.process.live_kill import kill_mid_stage
    from tests.engine.process.test_runs import export, show, stagelab, wait_for

    plan_file = data_dir / f"lora-{tmp_path.name}.yaml"
    plan_file.write_text(RESUMABLE)
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "reference")
    ref_id = json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][0]["runs"][0]["id"]
    run_id = stagelab(
        ws, "run", str(plan_file), "--name", "killed", "--detach", "--no-cache"
    ).stdout.strip()
    kill_mid_stage(ws, run_id, 1)
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout
    ours = export(ws, run_id, tmp_path / "resumed.csv")
    theirs = export(ws, ref_id, tmp_path / "reference.csv")
    assert ours == theirs
    keys = {key for stage, _, key, _ in ours if stage == "sft"}
    assert {"train/loss", "eval/loss", "model/trainable_parameters"} <= keys
    store = Store.open(ws / "stagelab.db")
    [resumed] = queries.list_events(store, run_id, kind="resume")
    assert "step 0" not in resumed.message  # continued mid-stage, from a checkpoint
    # The resumed stage's adapters are those of the uninterrupted run, bit for bit.
    from safetensors.torch import load_file

    outputs = [
        Path(show(ws, rid)["stages"][1]["output_dir"]) / "adapter_model.safetensors"
        for rid in (run_id, ref_id)
    ]
    mine, reference = (load_file(str(p)) for p in outputs)
    assert mine.keys() == reference.keys()
    assert all(torch.equal(mine[k], reference[k]) for k in mine)
