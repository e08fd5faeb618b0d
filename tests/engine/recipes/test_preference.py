"""The `preference` stage (DPO, SimPO): the loss equals a hand computation over each pair
on its own, training makes the model prefer the chosen answers, and validation names what
cannot be aligned."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.spec import PlanInvalid, load_plan_text
from engine.train.recipe import Targets

SFT = """
name: align
stages:
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {builtin: gpt2-tiny, vocab_size: 200}
    data: {path: prefs.jsonl, prompt_column: prompt, response_column: chosen, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 8
"""

DPO = """
  - name: dpo
    kind: preference
    loss: dpo
    model: {from_stage: sft}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    optimizer: {lr: 0.003}
    batch_size: 8
    max_steps: 30
    log_every_steps: 5
    eval: {every_steps: 15, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 10}
"""


@pytest.fixture
def sft_dir(train_stage_of, prefs):
    return train_stage_of(SFT).recipe.save()[0]


def hand_logp(model, prompt_ids, response_ids):
    """log π(response | prompt) from one unpadded forward, with Python floats."""
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].tolist()
    total = 0.0
    for k, token in enumerate(response_ids):
        row = logits[len(prompt_ids) + k - 1]
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        total += row[token] - log_z
    return total


def pair_ids(recipe, row):
    """Prompt and response ids of an encoded row (labels mark the response)."""
    out = []
    for prefix in ("", "rejected_"):
        ids, labels = row[f"{prefix}input_ids"], row[f"{prefix}labels"]
        start = next(i for i, v in enumerate(labels) if v != -100)
        out.append((ids[:start], ids[start:]))
    return out


def test_dpo_loss_equals_a_hand_computation(train_stage_of, sft_dir):
    from engine.data.encode import pad_batch

    plan = SFT + DPO.replace("max_steps: 30", "max_steps: 3")
    recipe = train_stage_of(plan, index=1, outputs={"sft": sft_dir}).recipe
    rows = recipe.eval_rows[:6]
    batch = pad_batch(rows, recipe.pad_id)  # chosen and rejected of different lengths
    recipe.model.eval()
    with torch.no_grad():
        ours = recipe.loss("train", batch, Targets({"train": len(rows)}))
    beta, expected, margins = 0.1, 0.0, []
    for row in rows:
        (p, chosen), (p2, rejected) = pair_ids(recipe, row)
        assert p == p2
        r_c = beta * (hand_logp(recipe.model, p, chosen) - hand_logp(recipe.reference, p, chosen))
        r_r = beta * (
            hand_logp(recipe.model, p, rejected) - hand_logp(recipe.reference, p, rejected)
        )
        margins.append(r_c - r_r)
        expected += math.log1p(math.exp(-(r_c - r_r)))
    assert ours.loss.item() == pytest.approx(expected / len(rows), rel=1e-4, abs=1e-6)
    assert ours.parts["reward_margin"].item() == pytest.approx(
        sum(margins) / len(rows), rel=1e-4, abs=1e-6
    )
    # Trained for 3 steps, the policy already differs from its frozen reference.
    assert any(abs(m) > 1e-4 for m in margins)


def test_simpo_loss_is_length_normalised_and_reference_free(train_stage_of, sft_dir):
    from engine.data.encode import pad_batch

    plan = SFT + DPO.replace("loss: dpo", "loss: simpo\n    margin: 0.5").replace(
        "max_steps: 30", "max_steps: 2"
    )
    recipe = train_stage_of(plan, index=1, outputs={"sft": sft_dir}).recipe
    assert recipe.reference is None and recipe.frozen_modules() == {}
    rows = recipe.eval_rows[:4]
    recipe.model.eval()
    with torch.no_grad():
        ours = recipe.loss(
            "train", pad_batch(rows, recipe.pad_id), Targets({"train": len(rows)})
        ).loss.item()
    expected = 0.0
    for row in rows:
        (p, chosen), (_, rejected) = pair_ids(recipe, row)
        r_c = 2.0 * hand_logp(recipe.model, p, chosen) / len(chosen)
        r_r = 2.0 * hand_logp(recipe.model, p, rejected) / len(rejected)
        expected += math.log1p(math.exp(-(r_c - r_r - 0.5)))
    assert ours == pytest.approx(expected / len(rows), rel=1e-4)


def test_dpo_makes_the_model_prefer_the_chosen_answers(train_stage_of, sft_dir):
    from engine.recipes import TrainingRecipe

    result = train_stage_of(SFT + DPO, index=1, outputs={"sft": sft_dir})
    assert result.outcome == "finished" and isinstance(result.recipe, TrainingRecipe)
    accuracy = result.series("eval/accuracy")
    assert accuracy[30] >= 0.9, accuracy
    margin = result.series("train/reward_margin")
    assert margin[30] > margin[1] and margin[1] >= 0
    # The reference stayed the SFT model, bit for bit, while the policy moved away.
    from safetensors.torch import load_file

    sft = load_file(str(sft_dir / "model.safetensors"))
    reference = result.recipe.reference.state_dict()
    policy = result.recipe.model.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in sft.items())
    assert not all(torch.equal(policy[k], v) for k, v in sft.items())
    assert not any(p.requires_grad for p in result.recipe.reference.parameters())
    # DPO may lower both log-probabilities; the rejected answers' fall faster.
    chosen, rejected = result.series("train/logp_chosen"), result.series("train/logp_rejected")
    assert rejected[1] - rejected[30] > chosen[1] - chosen[30]


def problems(text: str) -> list[str]:
    try:
        load_plan_text(text)
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


def test_validation_names_what_cannot_be_aligned():
    plan = SFT + DPO
    assert problems(plan) == []
    bert = plan.replace("{builtin: gpt2-tiny, vocab_size: 200}", "{builtin: bert-tiny}")
    assert any("stages[1].model" in p and "causal-LM" in p for p in problems(bert))
    metric = plan.replace("metrics: [loss, accuracy]", "metrics: [loss, f1]")
    assert any("stages[1].eval.metrics" in p and "f1" in p for p in problems(metric))
    beta = plan.replace("loss: dpo", "loss: dpo\n    beta: 0")
    assert any("stages[1].beta" in p for p in problems(beta))
    noisy = plan.replace("loss: dpo", "loss: dpo\n    augmentation: {swap_prob: 0.1}")
    assert any("stages[1].augmentation" in p for p in problems(noisy))


@pytest.mark.slow
def test_sigkill_in_dpo_then_resume_equals_an_uninterrupted_run(tmp_path, prefs):
    from tests.engine.process.live_kill import kill_mid_stage
    from tests.engine.process.test_runs import export, show, stagelab, wait_for

    plan = prefs.parent / f"align-{tmp_path.name}.yaml"
    plan.write_text(SFT + DPO)
    ref_ws, ws = tmp_path / "reference", tmp_path / "ws"
    stagelab(ref_ws, "run", str(plan), "--name", "reference")
    ref_id = show_only_run(ref_ws, stagelab)

    run_id = stagelab(ws, "run", str(plan), "--name", "killed", "--detach").stdout.strip()
    kill_mid_stage(ws, run_id, 1)  # mid-DPO, after a checkpoint
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout
    ours = export(ws, run_id, tmp_path / "resumed.csv")
    theirs = export(ref_ws, ref_id, tmp_path / "reference.csv")
    assert any(key == "train/reward_margin" for _, _, key, _ in ours)
    assert ours == theirs


def show_only_run(ws, stagelab) -> str:
    listing = json.loads(stagelab(ws, "ls", "--json").stdout)
    return listing["experiments"][0]["runs"][0]["id"]


def test_dpo_with_lora_takes_the_base_without_adapters_as_reference(train_stage_of, sft_dir):
    from engine.data.encode import pad_batch

    plan = SFT + DPO.replace("max_steps: 30", "max_steps: 6").replace(
        "loss: dpo", "loss: dpo\n    adapter: {rank: 4, alpha: 8, dropout: 0.0}"
    )
    result = train_stage_of(plan, index=1, outputs={"sft": sft_dir})
    recipe = result.recipe
    assert result.outcome == "finished" and recipe.reference is None
    assert recipe.frozen_modules() == {}
    rows = recipe.eval_rows[:4]
    recipe.model.eval()
    with torch.no_grad():
        ours = recipe.loss("train", pad_batch(rows, recipe.pad_id), Targets({"train": len(rows)}))
    # By hand: the policy (adapters on) against a plain copy of the SFT model.
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(sft_dir)).eval()
    expected = 0.0
    for row in rows:
        (p, chosen), (_, rejected) = pair_ids(recipe, row)
        r_c = 0.1 * (hand_logp(recipe.model, p, chosen) - hand_logp(base, p, chosen))
        r_r = 0.1 * (hand_logp(recipe.model, p, rejected) - hand_logp(base, p, rejected))
        expected += math.log1p(math.exp(-(r_c - r_r)))
    assert ours.loss.item() == pytest.approx(expected / len(rows), rel=1e-4, abs=1e-6)
    assert result.series("model/trainable_parameters")[0] < result.series("model/parameters")[0]
    # The merged output loads in plain transformers.
    out = recipe.save()[0]
    assert AutoModelForCausalLM.from_pretrained(str(out)).config.model_type == "gpt2"


def test_dpo_adapter_output_names_its_base_and_loads_merged(train_stage_of, sft_dir):
    from engine.models.adapters import adapter_record, merged_model

    plan = SFT + DPO.replace("max_steps: 30", "max_steps: 2").replace(
        "loss: dpo", "loss: dpo\n    adapter: {rank: 4, dropout: 0.0, output: adapter}"
    )
    recipe = train_stage_of(plan, index=1, outputs={"sft": sft_dir}).recipe
    out = recipe.save()[0]
    # A preference stage has no task: its adapters' base is a causal LM, the SFT output.
    record = adapter_record(out)
    assert record["objective"] == "preference" and record["base"] == str(sft_dir)
    rows = recipe.eval_rows[:4]
    merged = merged_model(out).eval()
    ids = torch.tensor([rows[0]["input_ids"]])
    with torch.no_grad():
        expected = recipe.model.eval()(input_ids=ids).logits
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-5)
