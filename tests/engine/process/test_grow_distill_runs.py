"""`grow` and `distill` through the real CLI and engine subprocess: SIGKILL in the middle
of each, resume, and the record equals an uninterrupted run's; the outputs load in plain
transformers and give the engine's logits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.process.live_kill import kill_mid_stage, resume_and_kill_mid_stage
from tests.engine.process.test_runs import export, show, stagelab, wait_for

pytestmark = pytest.mark.slow

PLAN = """
name: grow-distill
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 6
  - name: deeper
    kind: grow
    model: {from_stage: mlm}
    target_layers: 4
    identity_init: true
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 30
    log_every_steps: 4
    freezing: {layers: 2, unfreeze: {every_steps: 10, layers: 2}}
    eval: {every_steps: 10, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 5}
  - name: teacher
    kind: train
    model: {from_stage: deeper}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 12
  - name: student
    kind: distill
    teacher: {from_stage: teacher}
    model: {builtin: bert-tiny}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    alpha: 0.5
    temperature: 2.0
    hidden_weight: 0.1
    batch_size: 8
    max_steps: 30
    log_every_steps: 4
    augmentation: {swap_prob: 0.1}
    eval: {every_steps: 10, metrics: [loss, accuracy, f1]}
    checkpoint: {every_steps: 5}
"""


@pytest.fixture
def plan_file(data_dir: Path, tmp_path: Path) -> Path:
    path = data_dir / f"grow-distill-{tmp_path.name}.yaml"
    path.write_text(PLAN)
    return path


def test_sigkill_in_grow_and_in_distill_then_resume_equals_an_uninterrupted_run(
    tmp_path, plan_file
):
    # The reference trains in a workspace of its own: nothing of it can be reused.
    ref_ws, ws = tmp_path / "reference", tmp_path / "ws"
    stagelab(ref_ws, "run", str(plan_file), "--name", "reference")
    listing = json.loads(stagelab(ref_ws, "ls", "--json").stdout)
    ref_id = listing["experiments"][0]["runs"][0]["id"]

    run_id = stagelab(ws, "run", str(plan_file), "--name", "killed", "--detach").stdout.strip()
    kill_mid_stage(ws, run_id, 1)  # mid-grow, after a checkpoint
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    resume_and_kill_mid_stage(ws, run_id, 3)  # mid-distill
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    resumed = stagelab(ws, "resume", run_id)
    assert "finished" in resumed.stdout
    data = show(ws, run_id)
    assert data["status"] == "finished"

    ours = export(ws, run_id, tmp_path / "resumed.csv")
    theirs = export(ref_ws, ref_id, tmp_path / "reference.csv")
    assert ours == theirs
    keys = {(stage, key) for stage, _, key, _ in ours}
    assert ("student", "train/loss_kd") in keys and ("deeper", "model/parameters") in keys
    for stage, key in keys:  # no repeated and no missing steps
        steps = [s for st, s, k, _ in ours if (st, k) == (stage, key)]
        assert len(steps) == len(set(steps))
        if key.startswith("train/"):
            assert steps == list(range(1, len(steps) + 1))

    # The outputs are what plain transformers loads, with the engine's logits.
    grown, student = data["stages"][1]["output_dir"], data["stages"][3]["output_dir"]
    code = f"""
import json, torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained({student!r})
enc = tok(["a great day", "an awful room"], return_tensors="pt", padding=True)
student = AutoModelForSequenceClassification.from_pretrained({student!r}).eval()
grown = AutoModelForMaskedLM.from_pretrained({grown!r}).eval()
print(json.dumps([student(**enc).logits.tolist(), grown(**enc).logits.sum(-1).tolist(),
                  grown.config.num_hidden_layers]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    student_logits, grown_sums, layers = json.loads(proc.stdout.splitlines()[-1])
    assert layers == 4

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    # The engine's last checkpoint of the student holds the weights it trained.
    ckpt = ws / "runs" / run_id / "checkpoints" / "stage3-step30" / "model.safetensors"
    engine_model = AutoModelForSequenceClassification.from_pretrained(student).eval()
    engine_model.load_state_dict(load_file(str(ckpt)))
    enc = AutoTokenizer.from_pretrained(student)(
        ["a great day", "an awful room"], return_tensors="pt", padding=True
    )
    torch.testing.assert_close(engine_model(**enc).logits, torch.tensor(student_logits))
    grown_model = AutoModelForMaskedLM.from_pretrained(grown).eval()
    torch.testing.assert_close(grown_model(**enc).logits.sum(-1), torch.tensor(grown_sums))
