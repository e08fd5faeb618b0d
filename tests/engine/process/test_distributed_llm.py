"""LoRA and preference stages on several processes (CPU, gloo): the same numbers and
output files as one process, and exact resume after a rank is killed mid-DPO
(docs/distributed.md, "Preference and LoRA stages")."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.engine.process.live_kill import pause_after_checkpoint
from tests.engine.process.test_distributed import REL_TOL, assert_close, points, run_id_of
from tests.engine.process.test_runs import show, stagelab, wait_for

pytestmark = pytest.mark.slow


ADAPTERS_PREFERENCE = """
name: lora-dpo-ddp
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 4
    log_every_steps: 2
    optimizer: {lr: 0.01}
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0}
    eval: {every_steps: 4, metrics: [loss, accuracy]}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    log_every_steps: 2
    optimizer: {lr: 0.01}
    regularization: {dropout: 0.0}
    freezing: {layers: 1, unfreeze: {every_steps: 3}}
    adapter: {rank: 4, alpha: 8, dropout: 0.0, output: adapter}
    eval: {every_steps: 3, metrics: [loss, accuracy]}
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {builtin: gpt2-tiny, vocab_size: 200}
    data: {path: prefs.jsonl, prompt_column: prompt, response_column: chosen, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    log_every_steps: 2
    optimizer: {lr: 0.01}
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0}
    eval: {every_steps: 3, metrics: [loss]}
  - name: dpo
    kind: preference
    loss: dpo
    model: {from_stage: sft}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    log_every_steps: 2
    regularization: {dropout: 0.0}
    eval: {every_steps: 3, metrics: [loss, accuracy]}
  - name: dpo-lora
    kind: preference
    loss: dpo
    model: {from_stage: sft}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    optimizer: {lr: 0.01}
    batch_size: 8
    grad_accum: 2
    max_steps: 4
    log_every_steps: 2
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0, output: adapter}
    eval: {every_steps: 2, metrics: [loss, accuracy]}
  - name: simpo
    kind: preference
    loss: simpo
    margin: 0.5
    model: {from_stage: dpo-lora}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 4
    log_every_steps: 2
    regularization: {dropout: 0.0}
    eval: {every_steps: 4, metrics: [loss, accuracy]}
"""


def output_files(ws: Path, run_id: str) -> dict[str, list[str]]:
    """Each stage's output files (relative names), by stage folder."""
    stages = Path(show(ws, run_id)["run_dir"]) / "stages"
    return {
        folder.name: sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file())
        for folder in sorted(stages.iterdir())
    }


def test_lora_and_preference_stages_on_two_processes_equal_one(tmp_path, data_dir, prefs):
    import torch
    from peft import PeftModel
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
    )

    from engine.models.adapters import adapter_record, is_adapter_folder, merged_model

    plan_file = data_dir / f"lora-dpo-ddp-{tmp_path.name}.yaml"
    plan_file.write_text(ADAPTERS_PREFERENCE)
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "one", "--no-cache")
    stagelab(ws, "run", str(plan_file), "--name", "two", "--nproc", "2", "--no-cache")
    one_id, two_id = run_id_of(ws, "one"), run_id_of(ws, "two")
    assert show(ws, two_id)["status"] == "finished"
    ours = points(ws, two_id, tmp_path / "two.csv")
    theirs = points(ws, one_id, tmp_path / "one.csv")
    for stage in ("dpo", "dpo-lora", "simpo"):
        for key in ("train/loss", "train/reward_margin", "train/logp_rejected", "eval/accuracy"):
            assert any(k[0] == stage and k[2] == key for k in ours), (stage, key)
    assert any(k[0] == "cls" and k[2] == "model/trainable_parameters" for k in ours)
    # An implicit reward is a difference of log-probabilities of some 50 nats (times beta):
    # another summation order moves it by ~1e-6 however small the difference is.
    rewards = {k for k in theirs if "/reward_" in k[2] and k[2] != "train/reward_accuracy"}
    assert rewards and ours.keys() == theirs.keys()
    assert_close({k: ours[k] for k in rewards}, {k: theirs[k] for k in rewards}, REL_TOL, abs_=1e-5)
    rest = ours.keys() - rewards
    assert_close({k: ours[k] for k in rest}, {k: theirs[k] for k in rest}, REL_TOL)

    # The owner alone wrote each output, once: the same files as one process writes, and
    # they load (adapters in peft, merged models in transformers) to the same weights.
    files = output_files(ws, two_id)
    assert files == output_files(ws, one_id)
    assert not any(".partial" in f or "-partial" in f for names in files.values() for f in names)
    run_dirs = {r: Path(show(ws, r)["run_dir"]) / "stages" for r in (one_id, two_id)}

    def loaded(run_id: str, folder: str):
        out = run_dirs[run_id] / folder / "output"
        if folder.endswith("-cls"):
            assert is_adapter_folder(out) and Path(adapter_record(out)["base"]).is_relative_to(
                run_dirs[run_id]
            )
            base = AutoModelForSequenceClassification.from_pretrained(adapter_record(out)["base"])
            return PeftModel.from_pretrained(base, str(out)).merge_and_unload()
        if folder.endswith("-dpo-lora"):
            assert is_adapter_folder(out)
            return merged_model(out)
        assert not is_adapter_folder(out)
        auto = AutoModelForMaskedLM if folder.endswith("-mlm") else AutoModelForCausalLM
        return auto.from_pretrained(str(out))

    # Adam turns the float noise of a near-zero gradient into a step of up to lr (5e-4):
    # a few weights of a fully trained model differ (measured: 8e-5), the curves do not.
    for folder in files:
        mine, single = loaded(two_id, folder).state_dict(), loaded(one_id, folder).state_dict()
        assert mine.keys() == single.keys()
        for name, value in single.items():
            torch.testing.assert_close(mine[name], value, rtol=REL_TOL, atol=5e-4)


DPO_LORA_RESUME = """
name: dpo-lora-resume
stages:
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {builtin: gpt2-tiny, vocab_size: 200}
    data: {path: prefs.jsonl, prompt_column: prompt, response_column: chosen, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 4
    regularization: {dropout: 0.0}
  - name: dpo
    kind: preference
    loss: dpo
    model: {from_stage: sft}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    optimizer: {lr: 0.01}
    batch_size: 8
    max_steps: 8
    log_every_steps: 2
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0, output: adapter}
    eval: {every_steps: 4, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 2}
"""


def test_sigkill_in_a_two_process_dpo_with_adapters_then_resume_is_exact(tmp_path, prefs):
    plan_file = prefs.parent / f"dpo-lora-resume-{tmp_path.name}.yaml"
    plan_file.write_text(DPO_LORA_RESUME)
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "reference", "--nproc", "2", "--no-cache")
    run_id = stagelab(
        ws, "run", str(plan_file), "--name", "killed", "--nproc", "2", "--detach", "--no-cache"
    ).stdout.strip()
    pause_after_checkpoint(ws, run_id, 1)  # mid-DPO, after a checkpoint of the adapters
    other = int((Path(show(ws, run_id)["run_dir"]) / "rank1.pid").read_text())
    os.kill(other, signal.SIGKILL)
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 60, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout
    from engine.store import Store, queries

    resumed_at = queries.list_events(Store.open(ws / "stagelab.db"), run_id, kind="resume")
    assert resumed_at and "step 0" not in resumed_at[-1].message  # continued mid-stage
    ours = points(ws, run_id, tmp_path / "resumed.csv")
    theirs = points(ws, run_id_of(ws, "reference"), tmp_path / "reference.csv")
    assert any(k[0] == "dpo" and k[2] == "train/reward_margin" for k in ours)
    # Same world size: the adapters, optimizer and every rank's RNG come back exactly; the
    # reference (the base with the adapters off) is the same base.
    assert ours == theirs
