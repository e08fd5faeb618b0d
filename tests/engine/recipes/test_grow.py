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
    folder = tmp_path / "roberta"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "roberta", "num_hidden_layers": 2})
    )
    other = GROW.replace("{from_stage: mlm}", "{path: roberta}")
    found = [p for p in problems(other, plan_dir=tmp_path) if "roberta" in p]
    assert found and "does not know how to copy" in found[0]


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
