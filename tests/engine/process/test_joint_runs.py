"""`joint` stages through the real CLI and engine subprocess: SIGKILL in the middle of a
shared-encoder stage (two data streams drawn by a seeded rule) and of a mutual stage (two
models), resume, and the record equals an uninterrupted run's; `show --json` lists each
member's output, which plain transformers loads and `stagelab predict` runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main
from tests.engine.process.live_kill import kill_mid_stage, resume_and_kill_mid_stage
from tests.engine.process.test_runs import export, show, stagelab, wait_for

pytestmark = pytest.mark.slow


def plan_text(scored: Path) -> str:
    data = f"path: {scored}, max_length: 24, eval_ratio: 0.2, split_seed: 5"
    return f"""
name: joint-kill
stages:
  - name: multitask
    kind: joint
    model: {{builtin: bert-tiny, vocab_size: 200}}
    members:
      - {{name: mood, data: {{{data}}}}}
      - {{name: strength, task: sequence_regression, weight: 0.5, data: {{{data}, label_column: score}}}}
    sampling: proportional
    batch_size: 8
    max_steps: 24
    log_every_steps: 4
    freezing: {{layers: 1, unfreeze: {{every_steps: 10, layers: 1}}}}
    augmentation: {{swap_prob: 0.1}}
    eval: {{every_steps: 8, metrics: [loss, accuracy, mae]}}
    checkpoint: {{every_steps: 5}}
  - name: mutual
    kind: joint
    coupling: mutual
    members:
      - {{name: first, model: {{from_stage: multitask, member: mood}}, data: {{{data}}}}}
      - {{name: second, model: {{builtin: bert-tiny}}, lr_multiplier: 2.0, data: {{{data}}}}}
    batch_size: 8
    max_steps: 20
    log_every_steps: 4
    eval: {{every_steps: 10, metrics: [loss, accuracy]}}
    checkpoint: {{every_steps: 5}}
"""


def test_sigkill_in_joint_stages_then_resume_equals_an_uninterrupted_run(
    tmp_path, scored_csv, capsys
):
    plan_file = tmp_path / "joint.yaml"
    plan_file.write_text(plan_text(scored_csv))
    ref_ws, ws = tmp_path / "reference", tmp_path / "ws"
    stagelab(ref_ws, "run", str(plan_file), "--name", "reference")
    ref_id = json.loads(stagelab(ref_ws, "ls", "--json").stdout)["experiments"][0]["runs"][0]["id"]

    run_id = stagelab(ws, "run", str(plan_file), "--name", "killed", "--detach").stdout.strip()
    kill_mid_stage(ws, run_id, 0)  # mid shared-encoder stage, after a checkpoint
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    resume_and_kill_mid_stage(ws, run_id, 1)  # mid mutual stage
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout

    ours = export(ws, run_id, tmp_path / "resumed.csv")
    theirs = export(ref_ws, ref_id, tmp_path / "reference.csv")
    assert ours == theirs
    keys = {(stage, key) for stage, _, key, _ in ours}
    for expected in (
        ("multitask", "train/loss/mood"),
        ("multitask", "train/loss/strength"),
        ("multitask", "eval/mae/strength"),
        ("multitask", "eval/accuracy/mood"),
        ("mutual", "train/loss_mutual"),
        ("mutual", "eval/accuracy/second"),
    ):
        assert expected in keys
    for stage, key in keys:  # no repeated and no missing steps
        steps = [s for st, s, k, _ in ours if (st, k) == (stage, key)]
        assert len(steps) == len(set(steps))
    # Proportional sampling gives steps of one member: each step has one member's loss.
    mood = {s for st, s, k, _ in ours if (st, k) == ("multitask", "train/loss/mood")}
    strength = {s for st, s, k, _ in ours if (st, k) == ("multitask", "train/loss/strength")}
    assert mood and strength and not mood & strength and mood | strength == set(range(1, 25))

    data = show(ws, run_id)
    outputs = data["stages"][0]["outputs"]
    assert [Path(p).name for p in outputs] == ["mood", "strength"]
    code = f"""
import json, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained({outputs[1]!r})
model = AutoModelForSequenceClassification.from_pretrained({outputs[1]!r}).eval()
enc = tok(["great great day"], return_tensors="pt")
print(json.dumps([model.config.problem_type, model(**enc).logits.shape[-1]]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["regression", 1]

    # `stagelab predict` in this process (its own process: tests/engine/predict).
    def predict(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--workspace", str(ws), "predict", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, said, _ = predict(f"{run_id}:mutual:second", "--text", "a great day", "--json")
    assert code == 0 and json.loads(said.splitlines()[0])["labels"]
    code, number, _ = predict(f"{run_id}:multitask:strength", "--text", "a great day")
    assert code == 0 and number.splitlines()[1].split()[0] == "value"  # not a label
    float(number.splitlines()[1].split()[1])
    code, _, refused = predict(f"{run_id}:mutual", "--text", "x")
    assert code == 2 and "joint stage with a model per member (first, second)" in refused
