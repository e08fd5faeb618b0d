"""Real checkpoints as people bring them (issue 29, item 5): bf16/fp16 weights train as
fp32 master weights, sharded safetensors load as one model, LoRA merged into a model with
tied embeddings keeps them tied (and adapters on a tied end are refused), and a Hub id
already in the local Hugging Face cache trains offline, while a missing one is refused by
validate with the folder it looked in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

PRETRAIN = """
name: real
stages:
  - name: s
    kind: pretrain
    objective: causal_lm
    model: {model}
    data: {{path: corpus.txt, max_length: 24, eval_ratio: 0.05}}
    precision: {precision}
    batch_size: 4
    max_steps: 2
    log_every_steps: 1
"""

SFT_LORA = """
name: real
stages:
  - name: s
    kind: train
    task: causal_lm_sft
    model: {{path: {folder}}}
    data: {{path: instructions.jsonl, prompt_column: prompt, response_column: response,
            max_length: 24, eval_ratio: 0.1}}
    adapter: {adapter}
    batch_size: 4
    max_steps: 3
    optimizer: {{lr: 0.05}}
"""


def resaved(source: Path, folder: Path, dtype: torch.dtype, shard: str | None = None) -> Path:
    """The model of `source` saved again in `dtype` (in shards of at most `shard`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32)
    model.to(dtype).save_pretrained(str(folder), **({"max_shard_size": shard} if shard else {}))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(folder))
    return folder


def logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits.float()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_checkpoints_train_as_fp32_master_weights(
    train_stage_of, family_folders, tmp_path, dtype
):
    name = str(dtype).removeprefix("torch.")
    folder = resaved(family_folders / "llama", tmp_path / name, dtype)
    assert json.loads((folder / "config.json").read_text())["dtype"] == name
    plan = PRETRAIN.format(model=f"{{path: {folder}}}", precision="bf16")
    result = train_stage_of(plan)
    assert result.outcome == "finished"
    # Transformers 5 would load them in the checkpoint's dtype: AdamW steps in bf16 lose
    # the small updates, and fp16's gradient scaler refuses fp16 parameters.
    assert {p.dtype for p in result.recipe.model.parameters()} == {torch.float32}
    losses = result.series("train/loss")
    assert losses and all(torch.isfinite(torch.tensor(list(losses.values()))))
    notes = [e.message for e in result.events("model")]
    assert any(f"holds {name} weights" in note and "float32" in note for note in notes), notes


def test_sharded_safetensors_load_as_the_whole_model(train_stage_of, family_folders, tmp_path):
    from transformers import AutoModelForCausalLM

    source = family_folders / "llama"
    folder = resaved(source, tmp_path / "sharded", torch.float32, shard="20KB")
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert len(shards) >= 2 and shards[0].startswith("model-00001-of-0000")
    assert (folder / "model.safetensors.index.json").exists()
    assert not (folder / "model.safetensors").exists()
    ids = [1, 5, 9, 12, 3]
    expected = logits(AutoModelForCausalLM.from_pretrained(str(source)), ids)
    seen = {}
    plan = PRETRAIN.format(model=f"{{path: {folder}}}", precision="fp32")
    result = train_stage_of(plan, before=lambda r: seen.update(start=logits(r.model, ids)))
    torch.testing.assert_close(seen["start"], expected)
    assert result.outcome == "finished"
    assert not [e for e in result.events("model") if e.level == "warning"]


def tied(model: torch.nn.Module) -> bool:
    return model.get_output_embeddings().weight is model.get_input_embeddings().weight


def test_lora_merged_into_tied_embeddings_keeps_them_tied(train_stage_of, family_folders, tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    folder = family_folders / "qwen2"
    assert json.loads((folder / "config.json").read_text())["tie_word_embeddings"] is True
    result = train_stage_of(SFT_LORA.format(folder=folder, adapter="{rank: 4}"))
    ids = [3, 8, 13, 21]
    adapted = logits(result.recipe.model, ids)
    [out] = result.recipe.save()
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    assert tied(merged)
    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        assert not [k for k in fh.keys() if k.startswith("lm_head")]
    torch.testing.assert_close(logits(merged, ids), adapted, atol=1e-5, rtol=1e-4)
    # The merged weights are trained ones, not the start's.
    start = AutoModelForCausalLM.from_pretrained(str(folder))
    assert not torch.allclose(logits(start, ids), adapted, atol=1e-4)


def test_adapters_on_a_tied_end_are_refused(train_stage_of, family_folders):
    from engine.models.build import ModelError

    adapter = "{rank: 4, target_modules: [q_proj, lm_head]}"
    with pytest.raises(ModelError) as refused:
        train_stage_of(SFT_LORA.format(folder=family_folders / "qwen2", adapter=adapter))
    message = str(refused.value)
    assert "lm_head shares its weights" in message
    assert "leave embed_tokens, lm_head out of target_modules" in message


REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, family_folders) -> Path:
    """A Hugging Face cache holding `acme/tiny-llama` (main = REVISION), as
    huggingface_hub lays one out, and the libraries pointed at it, downloads off."""
    import huggingface_hub.constants

    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--acme--tiny-llama"
    shutil.copytree(family_folders / "llama", repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # huggingface_hub reads the variables once, at import.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_cached_hub_id_trains_offline(train_stage_of, hub_cache, data_dir):
    from engine.spec import load_plan_text

    for model in ("{hub: acme/tiny-llama}", f"{{hub: acme/tiny-llama, revision: {REVISION}}}"):
        plan = PRETRAIN.format(model=model, precision="fp32")
        load_plan_text(plan, plan_dir=data_dir)
        result = train_stage_of(plan)
        assert result.outcome == "finished"
        assert result.recipe.model.config.model_type == "llama"


def test_a_missing_hub_id_is_refused_by_validate_with_the_cache_folder(hub_cache, data_dir):
    from engine.spec import PlanInvalid, load_plan_text

    plan = PRETRAIN.format(model="{hub: acme/not-here}", precision="fp32")
    with pytest.raises(PlanInvalid) as refused:
        load_plan_text(plan, plan_dir=data_dir)
    [problem] = [p for p in refused.value.problems if p.path == "stages[0].model.hub"]
    assert f"looked in {hub_cache / 'models--acme--not-here'}" in problem.message
    assert "HF_HUB_OFFLINE" in problem.message
    wrong = PRETRAIN.format(model="{hub: acme/tiny-llama, revision: v2}", precision="fp32")
    with pytest.raises(PlanInvalid) as refused:
        load_plan_text(wrong, plan_dir=data_dir)
    assert "at revision 'v2' is not in the local Hugging Face cache" in str(refused.value)
