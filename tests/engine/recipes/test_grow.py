"""`grow` stages for real (tiny models, CPU): the deeper model starts as the shallow one's
function, trains like pretrain or train with every per-stage setting (frozen copied
layers), records its size, and saves a folder plain transformers loads; validation names
the problems it can know."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from engine.data.encode import pad_batch
from engine.spec import PlanInvalid, load_plan_text

pytestmark = pytest.mark.slow

SHALLOW = """
name: t
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 4
"""

GROW = """
name: t
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    max_steps: 4
  - name: deeper
    kind: grow
    model: {from_stage: mlm}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    target_layers: 4
    identity_init: true
    batch_size: 8
    max_steps: 4
    eval: {metrics: [loss, accuracy]}
"""


@pytest.fixture
def shallow(train_stage_of):
    result = train_stage_of(SHALLOW)
    return result.recipe.save()[0]


def test_grow_starts_as_the_same_function_trains_and_saves_a_deeper_model(train_stage_of, shallow):
    seen = {}

    def before(recipe):
        old = AutoModelForMaskedLM.from_pretrained(str(shallow)).eval()
        recipe.model.eval()
        batch = pad_batch(recipe.eval_rows[:8], recipe.pad_id)
        with torch.no_grad():
            seen["old"] = old(**batch).logits
            seen["new"] = recipe.model(**batch).logits
        seen["copied"] = {
            k: v.clone() for k, v in recipe.model.bert.encoder.layer[:2].state_dict().items()
        }

    # The copied (original) layers are frozen: only the new ones, embeddings and head train.
    plan = GROW.replace(
        "max_steps: 4\n    eval", "max_steps: 4\n    freezing: {layers: 2}\n    eval"
    )
    result = train_stage_of(plan, index=1, outputs={"mlm": shallow}, before=before)
    torch.testing.assert_close(seen["new"], seen["old"], rtol=1e-5, atol=1e-5)
    assert result.outcome == "finished"
    model = result.recipe.model
    assert model.config.num_hidden_layers == 4
    for key, value in model.bert.encoder.layer[:2].state_dict().items():
        assert torch.equal(value, seen["copied"][key]), key
    assert not torch.equal(
        model.bert.encoder.layer[2].output.dense.weight,
        torch.zeros_like(model.bert.encoder.layer[2].output.dense.weight),
    )
    assert sorted(result.series("train/loss")) == [1, 2, 3, 4]
    before_params = result.series("model/parameters_before")[0]
    after_params = result.series("model/parameters")[0]
    assert after_params > before_params
    assert after_params == sum(p.numel() for p in model.parameters())
    (event,) = result.events("grow")
    assert event.data["layers_before"] == 2 and event.data["layers"] == 4

    out = result.recipe.save()[0]
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 4
    loaded = AutoModelForMaskedLM.from_pretrained(str(out)).eval()
    model.eval()
    batch = pad_batch(result.recipe.eval_rows[:8], result.recipe.pad_id)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_grow_trains_a_task_like_train(train_stage_of, shallow):
    plan = GROW.replace(
        "data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}\n    target_layers",
        "data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25}\n"
        "    objective: sequence_classification\n    method: interpolate\n    target_layers",
    ).replace("metrics: [loss, accuracy]", "metrics: [loss, accuracy, f1]")
    result = train_stage_of(plan, index=1, outputs={"mlm": shallow})
    assert result.outcome == "finished" and result.recipe.labels == ["negative", "positive"]
    assert result.series("eval/f1")
    out = result.recipe.save()[0]
    loaded = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert loaded.config.num_hidden_layers == 4 and loaded.config.id2label[1] == "positive"


def problems(text: str, plan_dir=None) -> list[str]:
    with pytest.raises(PlanInvalid) as info:
        load_plan_text(text, plan_dir=plan_dir)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


DEEPEST = """
  - name: deepest
    kind: grow
    model: {from_stage: deeper}
    data: {path: corpus.txt}
    target_layers: 3
    max_steps: 4
"""


def test_validation_of_grow_stages(tmp_path):
    shrink = GROW.replace("target_layers: 4", "target_layers: 2")
    assert any("stages[1].target_layers" in p and "has 2 layers" in p for p in problems(shrink))
    frozen = GROW.replace("identity_init: true", "identity_init: true\n    freezing: {layers: 5}")
    assert any("stages[1].freezing.layers" in p and "only 4" in p for p in problems(frozen))
    # A chain of grows counts from the last one's target.
    found = problems(GROW + DEEPEST)
    assert any("stages[2].target_layers" in p and "has 4 layers" in p for p in found)


def folder(tmp_path, name: str, config: dict) -> str:
    """A model folder with only its config.json, beside the plan's corpus."""
    (tmp_path / "corpus.txt").write_text("a few words\n")
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps(config))
    return name


def test_validation_reads_the_family_of_a_model_folder(tmp_path):
    from_folder = GROW.replace("{from_stage: mlm}", "{path: %s}")

    def found(config: dict, plan: str = from_folder) -> list[str]:
        name = folder(tmp_path, config["model_type"] + str(len(list(tmp_path.iterdir()))), config)
        return [p for p in problems(plan % name, plan_dir=tmp_path) if "stages[1]" in p]

    albert = found({"model_type": "albert", "num_hidden_layers": 2})
    assert any("shares one set of layer weights" in p for p in albert)
    assert any("does not know how to copy" in p for p in found({"model_type": "bloom"}))
    post_ln = found({"model_type": "opt", "do_layer_norm_before": False})
    assert any("do_layer_norm_before: false" in p for p in post_ln)
    # DistilBERT names its depth n_layers; growing to it is refused as too shallow.
    (shallow,) = found({"model_type": "distilbert", "n_layers": 4})
    assert "stages[1].target_layers" in shallow and "has 4 layers" in shallow
    # A folder's family is followed through the stages that train it before the grow.
    through = GROW.replace(
        "model: {builtin: bert-tiny, vocab_size: 200}", "model: {path: %s}"
    ).replace("target_layers: 4", "target_layers: 3")
    (refused,) = found({"model_type": "albert", "num_hidden_layers": 2}, through)
    assert refused.startswith("stages[1].model") and "ALBERT" in refused
    (deep,) = found({"model_type": "roberta", "num_hidden_layers": 3}, through)
    assert "has 3 layers" in deep


def test_roberta_llama_and_other_growable_folders_validate(tmp_path):
    plan = GROW.replace("{from_stage: mlm}", "{path: %s}")
    causal = plan.replace("kind: grow", "kind: grow\n    objective: causal_lm")
    for model_type in ("roberta", "electra", "distilbert", "deberta-v2", "llama", "qwen2"):
        name = folder(tmp_path, model_type, {"model_type": model_type, "num_hidden_layers": 2})
        text = causal if model_type in ("llama", "qwen2") else plan
        load_plan_text(text % name, plan_dir=tmp_path)


def test_a_gpt2_model_grows_and_trains_causal_lm(train_stage_of):
    plan = """
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {builtin: gpt2-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 3
  - name: deeper
    kind: grow
    objective: causal_lm
    model: {from_stage: lm}
    method: interpolate
    identity_init: true
    target_layers: 3
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 3
"""
    shallow = train_stage_of(plan).recipe.save()[0]
    result = train_stage_of(plan, index=1, outputs={"lm": shallow})
    model = result.recipe.model
    assert model.config.n_layer == 3
    assert [block.attn.layer_idx for block in model.transformer.h] == [0, 1, 2]
    assert sorted(result.series("train/loss")) == [1, 2, 3]


LLAMA = """
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {builtin: llama-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 3
  - name: deeper
    kind: grow
    objective: causal_lm
    model: {from_stage: lm}
    method: interpolate
    identity_init: true
    target_layers: 4
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 3
"""


def test_a_llama_model_grows_by_block_expansion_and_trains(train_stage_of):
    """LLaMA Pro's block expansion through the recipe: copies interleaved with their
    o_proj and down_proj zeroed start as the shallow model's function, then train."""
    from transformers import AutoModelForCausalLM

    shallow = train_stage_of(LLAMA).recipe.save()[0]
    seen = {}

    def before(recipe):
        old = AutoModelForCausalLM.from_pretrained(str(shallow)).eval()
        recipe.model.eval()
        batch = pad_batch(recipe.eval_rows[:8], recipe.pad_id)
        with torch.no_grad():
            seen["old"] = old(**batch).logits
            seen["new"] = recipe.model(**batch).logits
        layers = recipe.model.model.layers
        seen["zeroed"] = [not layers[i].mlp.down_proj.weight.any() for i in range(4)]

    result = train_stage_of(LLAMA, index=1, outputs={"lm": shallow}, before=before)
    assert torch.equal(seen["new"], seen["old"])
    assert seen["zeroed"] == [False, True, False, True]  # [0, 0, 1, 1]: copies follow
    assert result.outcome == "finished"
    model = result.recipe.model
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2, 3]
    assert sorted(result.series("train/loss")) == [1, 2, 3]
    assert model.model.layers[1].mlp.down_proj.weight.any()  # the new blocks trained
    out = result.recipe.save()[0]
    loaded = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    assert loaded.config.num_hidden_layers == 4
    model.eval()
    batch = pad_batch(result.recipe.eval_rows[:8], result.recipe.pad_id)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_a_cached_hub_model_is_checked_too(tmp_path, monkeypatch):
    """A Hub id in the local cache is read like a folder: ALBERT refused, depth counted."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for name, config in {
        "albert-tiny": {"model_type": "albert", "num_hidden_layers": 2},
        "electra-tiny": {"model_type": "electra", "num_hidden_layers": 4},
    }.items():
        repo = cache / f"models--org--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("abc123")
        (repo / "snapshots" / "abc123").mkdir(parents=True)
        (repo / "snapshots" / "abc123" / "config.json").write_text(json.dumps(config))
    (tmp_path / "corpus.txt").write_text("a few words\n")
    plan = GROW.replace("{from_stage: mlm}", "{hub: org/%s}")
    (albert,) = [p for p in problems(plan % "albert-tiny", tmp_path) if "stages[1]" in p]
    assert albert.startswith("stages[1].model") and "ALBERT shares" in albert
    (electra,) = [p for p in problems(plan % "electra-tiny", tmp_path) if "stages[1]" in p]
    assert "stages[1].target_layers" in electra and "has 4 layers" in electra


def test_student_layers_cuts_only_what_grow_could_copy(tmp_path):
    """A distill stage's `student_layers` uses the same surgery: the same families, checked
    by validate from the student folder's config.json (DistilBERT's depth is n_layers)."""
    plan = """
name: t
stages:
  - name: student
    kind: distill
    task: sequence_classification
    teacher: {path: %s}
    model: {path: %s}
    student_layers: 3
    data: {path: corpus.txt}
    max_steps: 2
"""
    teacher = folder(tmp_path, "teacher", {"model_type": "bert", "num_hidden_layers": 4})
    albert = folder(tmp_path, "albert", {"model_type": "albert", "num_hidden_layers": 4})
    distil = folder(tmp_path, "distil", {"model_type": "distilbert", "n_layers": 2})

    def cut(student: str) -> list[str]:
        found = problems(plan % (teacher, student), plan_dir=tmp_path)
        return [p for p in found if p.startswith("stages[0].student_layers")]

    (refused,) = cut(albert)
    assert "student_layers cannot cut this model: ALBERT shares" in refused
    (short,) = cut(distil)
    assert "only 2 layers (got 3)" in short
