"""A distillation across tokenizers through the real CLI and engine subprocess: a RoBERTa
teacher (byte-level BPE) and a DistilBERT student (WordPiece), each reading the rows with
its own tokenizer; SIGKILL in the middle of the distill stage, resume, and the record equals
an uninterrupted run's (both encodings of a row are drawn by one position)."""

from __future__ import annotations

import json

import pytest

from tests.engine.process.live_kill import kill_mid_stage
from tests.engine.process.test_runs import export, show, stagelab, wait_for

pytestmark = pytest.mark.slow


def test_sigkill_in_a_distillation_across_tokenizers_then_resume_equals_an_uninterrupted_run(
    tmp_path, data_dir, family_folders
):
    data = f"path: {data_dir / 'sentiment.csv'}, max_length: 48, eval_ratio: 0.25"
    plan_file = tmp_path / "distill.yaml"
    plan_file.write_text(f"""
name: distill-kill
stages:
  - name: teacher
    kind: train
    model: {{path: {family_folders["roberta"]}}}
    data: {{{data}}}
    batch_size: 8
    max_steps: 4
  - name: student
    kind: distill
    teacher: {{from_stage: teacher}}
    model: {{path: {family_folders["distilbert"]}}}
    data: {{{data}}}
    alpha: 0.3
    batch_size: 8
    max_steps: 8
    log_every_steps: 1
    batching: {{group_by_length: true}}
    augmentation: {{swap_prob: 0.1}}
    eval: {{every_steps: 4, metrics: [loss, accuracy]}}
    checkpoint: {{every_steps: 2}}
""")
    # Checkpoints every 2 steps: the event the kill waits for is sent once the writer thread
    # has the files on disk, while training goes on; the next snapshot (step 4) waits for
    # that write, so the event comes with 4 steps of the stage left. With every 4, a slow
    # write (a loaded CI machine) let the stage end before the pause reached it.
    ref_ws, ws = tmp_path / "reference", tmp_path / "ws"
    stagelab(ref_ws, "run", str(plan_file), "--name", "reference")
    ref_id = json.loads(stagelab(ref_ws, "ls", "--json").stdout)["experiments"][0]["runs"][0]["id"]

    run_id = stagelab(ws, "run", str(plan_file), "--name", "killed", "--detach").stdout.strip()
    kill_mid_stage(ws, run_id, 1)  # mid distillation, after a checkpoint
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout

    ours = export(ws, run_id, tmp_path / "resumed.csv")
    assert ours == export(ref_ws, ref_id, tmp_path / "reference.csv")
    kd = [s for stage, s, key, _ in ours if (stage, key) == ("student", "train/loss_kd")]
    assert kd == list(range(1, 9))
    assert ("student", 0, "teacher/accuracy") in {(st, s, k) for st, s, k, _ in ours}
