"""LoRA adapters on a stage (engine/models/adapters.py): only the adapters and a new head
train, the merged output computes what the adapters did, an adapter output loads in peft
and feeds later stages, QLoRA is refused cleanly without CUDA, and the fingerprint sees the
adapter settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

LORA_TRAIN = """
name: t
stages:
  - name: s
    kind: train
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25}
    batch_size: 8
    max_steps: 6
    optimizer: {lr: 0.01}
    freezing: {layers: 1, unfreeze: {every_steps: 3}}
    adapter: {rank: 4, alpha: 8}
"""

CAUSAL_CHAIN = """
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {builtin: llama-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 4
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {from_stage: lm}
    data: {path: instructions.jsonl, prompt_column: prompt, response_column: response, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    optimizer: {lr: 0.01}
    adapter: {rank: 4, output: OUTPUT}
"""

MORE_SFT = """  - name: more
    kind: train
    task: causal_lm_sft
    model: {{from_stage: sft}}
    data: {{path: instructions.jsonl, prompt_column: prompt, response_column: response, max_length: 24, eval_ratio: 0.2}}
    batch_size: 8
    max_steps: 2
    adapter: {{rank: 4, continue_adapter: {continued}}}
"""


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def is_adapter_weight(name: str) -> bool:
    return "lora_" in name or "modules_to_save" in name


def test_lora_trains_only_the_adapters_and_the_new_head(train_stage_of):
    before = {}
    result = train_stage_of(LORA_TRAIN, before=lambda r: before.update(snapshot(r.model)))
    assert result.outcome == "finished"
    after = snapshot(result.recipe.model)
    assert after.keys() == before.keys()
    base = [k for k in before if not is_adapter_weight(k)]
    changed = [k for k in base if not torch.equal(before[k], after[k])]
    assert base and changed == []  # every base weight bit-identical, unfreezing or not
    lora_b = [k for k in before if "lora_B" in k]
    assert lora_b and all(not torch.equal(before[k], after[k]) for k in lora_b)
    head = [k for k in before if "modules_to_save" in k and "classifier" in k]
    assert head and all(not torch.equal(before[k], after[k]) for k in head)
    trainable = result.series("model/trainable_parameters")[0]
    total = result.series("model/parameters")[0]
    counted = sum(p.numel() for p in result.recipe.model.parameters())
    assert total == counted and 0 < trainable < total / 10
    assert all(torch.isfinite(torch.tensor(v)) for v in result.series("train/loss").values())
    [event] = result.events("adapter")
    assert "lora rank 4 on query, value" in event.message


def sample_batch(tokenizer) -> dict[str, torch.Tensor]:
    return tokenizer(["mood of good?", "the trip was awful"], return_tensors="pt", padding=True)


def test_merged_output_computes_what_the_adapters_did(train_stage_of, data_dir):
    first = train_stage_of(CAUSAL_CHAIN.replace("OUTPUT", "merged"))
    lm_out = first.recipe.save()[0]
    result = train_stage_of(CAUSAL_CHAIN.replace("OUTPUT", "merged"), 1, {"lm": lm_out})
    model, tokenizer = result.recipe.model.eval(), result.recipe.tokenizer
    batch = sample_batch(tokenizer)
    with torch.no_grad():
        adapted = model(**batch).logits
    [out] = result.recipe.save()
    from transformers import AutoModelForCausalLM

    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, adapted, atol=1e-5, rtol=0)


def test_adapter_output_loads_in_peft_and_later_stages_continue_or_merge(train_stage_of, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    plan = CAUSAL_CHAIN.replace("OUTPUT", "adapter")
    lm_out = train_stage_of(plan).recipe.save()[0]
    result = train_stage_of(plan, 1, {"lm": lm_out})
    model, tokenizer = result.recipe.model.eval(), result.recipe.tokenizer
    batch = sample_batch(tokenizer)
    with torch.no_grad():
        adapted = model(**batch).logits
    [out] = result.recipe.save()
    record = json.loads((out / "stagelab-adapter.json").read_text())
    # The base of an SFT stage on an earlier causal LM is that stage's own output.
    assert Path(record["base"]) == lm_out and record["objective"] == "causal_lm_sft"
    assert not (out / "model.safetensors").exists() and (out / "adapter_config.json").exists()
    base = AutoModelForCausalLM.from_pretrained(record["base"])
    loaded = PeftModel.from_pretrained(base, str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, adapted, atol=1e-6, rtol=0)

    # A later stage continues those adapters: it starts where they ended.
    later = plan + MORE_SFT.format(continued="true")
    outputs = {"lm": lm_out, "sft": out}

    def starts_from_the_trained_adapters(recipe):
        with torch.no_grad():
            torch.testing.assert_close(recipe.model.eval()(**batch).logits, adapted)
        recipe.model.train()

    continued = train_stage_of(later, 2, outputs, before=starts_from_the_trained_adapters)
    assert continued.outcome == "finished"
    assert "continues the adapters" in continued.events("adapter")[0].message
    # Or it starts new adapters on the merged weights, which compute the same.
    fresh = plan + MORE_SFT.format(continued="false")

    def starts_from_the_merged_weights(recipe):
        # New LoRA matrices start at B = 0: the model computes what the merge does.
        with torch.no_grad():
            torch.testing.assert_close(
                recipe.model.eval()(**batch).logits, adapted, atol=1e-5, rtol=0
            )
        recipe.model.train()

    merged = train_stage_of(fresh, 2, outputs, before=starts_from_the_merged_weights)
    assert merged.outcome == "finished"


def test_qlora_is_refused_without_cuda_in_validation_and_in_the_stage(train_stage_of, monkeypatch):
    from engine.models.build import ModelError
    from engine.spec import load_plan_text
    from engine.spec.problems import PlanInvalid

    plan_text = LORA_TRAIN.replace("adapter: {rank: 4, alpha: 8}", "adapter: {kind: qlora}")
    sentence = "QLoRA needs a CUDA GPU and the bitsandbytes package; use kind: lora on CPU"
    with pytest.raises(PlanInvalid) as refused:
        load_plan_text(plan_text)
    assert [(p.path, sentence in p.message) for p in refused.value.problems] == [
        ("stages[0].adapter.kind", True)
    ]
    # With bitsandbytes installed but no CUDA device, the stage itself refuses.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "bitsandbytes" else real_find_spec(name, *a),
    )
    with pytest.raises(ModelError) as failed:
        train_stage_of(plan_text)
    assert str(failed.value) == sentence


def test_the_stage_fingerprint_covers_the_adapter_settings(data_dir):
    from engine.runtime.fingerprint import plan_fingerprints
    from engine.spec import load_plan_text

    def fingerprint(text: str) -> str:
        return plan_fingerprints(load_plan_text(text), data_dir)[0]

    lora = fingerprint(LORA_TRAIN)
    full = fingerprint(LORA_TRAIN.replace("    adapter: {rank: 4, alpha: 8}\n", ""))
    rank8 = fingerprint(LORA_TRAIN.replace("rank: 4", "rank: 8"))
    kept = fingerprint(LORA_TRAIN.replace("alpha: 8}", "alpha: 8, output: adapter}"))
    assert len({lora, full, rank8, kept}) == 4
    assert fingerprint(LORA_TRAIN) == lora
    # `target_modules: auto` is what leaving it out does: the same stage.
    auto = fingerprint(LORA_TRAIN.replace("alpha: 8}", "alpha: 8, target_modules: auto}"))
    assert auto == lora


GROWN = """
name: t
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 3
  - name: deeper
    kind: grow
    model: {from_stage: mlm}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    target_layers: 3
    batch_size: 8
    max_steps: 4
    optimizer: {lr: 0.01}
    adapter: {rank: 2, output: adapter}
"""


def test_an_adapter_output_of_a_grown_model_carries_its_base(train_stage_of):
    from peft import PeftModel
    from transformers import AutoModelForMaskedLM

    mlm_out = train_stage_of(GROWN).recipe.save()[0]
    result = train_stage_of(GROWN, 1, {"mlm": mlm_out})
    model = result.recipe.model.eval()
    batch = sample_batch(result.recipe.tokenizer)
    with torch.no_grad():
        adapted = model(**batch).logits
    counted = sum(p.numel() for p in model.parameters())
    assert result.series("model/parameters")[0] == counted
    [out] = result.recipe.save()
    record = json.loads((out / "stagelab-adapter.json").read_text())
    # The grown model is in no folder yet: its base is written beside the adapters.
    assert Path(record["base"]) == out / "base"
    base = AutoModelForMaskedLM.from_pretrained(record["base"])
    assert base.config.num_hidden_layers == 3
    loaded = PeftModel.from_pretrained(base, str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, adapted, atol=1e-6, rtol=0)


DISTILLED = """
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {builtin: gpt2-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 4
  - name: student
    kind: distill
    task: causal_lm
    teacher: {from_stage: lm}
    model: {from_stage: lm}
    student_layers: 1
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 4
    optimizer: {lr: 0.01}
    adapter: {rank: 2}
"""


def test_a_distilled_student_trains_adapters_only(train_stage_of):
    from transformers import AutoModelForCausalLM

    lm_out = train_stage_of(DISTILLED).recipe.save()[0]
    before = {}
    result = train_stage_of(
        DISTILLED, 1, {"lm": lm_out}, before=lambda r: before.update(snapshot(r.model))
    )
    after = snapshot(result.recipe.model)
    assert [
        k for k in before if not is_adapter_weight(k) and not torch.equal(before[k], after[k])
    ] == []
    assert any(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k)
    [out] = result.recipe.save()
    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 1


def test_validation_lists_every_adapter_and_chat_problem_at_once():
    from engine.spec import load_plan_text
    from engine.spec.problems import PlanInvalid

    plan = """
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {builtin: gpt2-tiny}
    data: {path: corpus.txt}
    max_steps: 2
    adapter: {output: adapter}
  - name: cls
    kind: train
    model: {builtin: bert-tiny}
    data: {path: chats.jsonl, messages_column: messages}
    max_steps: 2
    adapter: {continue_adapter: true}
  - name: student
    kind: distill
    task: causal_lm
    teacher: {from_stage: lm}
    model: {builtin: gpt2-tiny}
    data: {path: corpus.txt}
    max_steps: 2
  - name: deeper
    kind: grow
    objective: causal_lm
    model: {from_stage: lm}
    data: {path: corpus.txt}
    target_layers: 3
    max_steps: 2
    adapter: {continue_adapter: true}
"""
    with pytest.raises(PlanInvalid) as refused:
        load_plan_text(plan)
    assert {(p.path, p.message.split(";")[0]) for p in refused.value.problems} == {
        (
            "stages[1].adapter.continue_adapter",
            "continuing adapters needs model.from_stage naming an earlier stage whose "
            "adapter.output is adapter",
        ),
        (
            "stages[1].data.messages_column",
            "chat messages are for causal_lm_sft (this stage trains sequence classification)",
        ),
        (
            "stages[2].teacher.from_stage",
            "stage 'lm' writes its adapters alone (adapter.output: adapter), which a distill "
            "stage cannot start from",
        ),
        (
            "stages[3].adapter.continue_adapter",
            "a grow stage adds layers the earlier adapters do not cover",
        ),
    }
    adapter = load_plan_text(plan.split("  - name: cls")[0]).stages[0].adapter
    assert (adapter.kind, adapter.rank, adapter.alpha, adapter.output) == (
        "lora",
        8,
        16,
        "adapter",
    )
