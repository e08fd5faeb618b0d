"""Outputs of a model that runs its own code (issue 29, item 2): a stage allowed to load it
(`trust_remote_code: true`) records that in its output, and the predictor (`stagelab
predict`, the playground) and the ensemble loader pass the allowance on when they load it.
The model here is a GPT-2 under another name, its classes in its folder (auto_map)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from engine.models.ensemble import Ensemble
from engine.predict.folder import OutputError
from engine.predict.predictor import Predictor, Sampling
from engine.spec.outputs import CODE_FILE
from tests.engine.data.test_tokenizers_as_they_come import byte_bpe

pytestmark = pytest.mark.slow

CONFIGURATION = """
from transformers import GPT2Config


class TinyConfig(GPT2Config):
    model_type = "stagelab-tiny-custom"
"""
MODELING = """
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

from .configuration_tiny import TinyConfig


class TinyForCausalLM(GPT2LMHeadModel):
    config_class = TinyConfig


class TinyForSequenceClassification(GPT2ForSequenceClassification):
    config_class = TinyConfig
"""
AUTO_MAP = {
    "AutoConfig": "configuration_tiny.TinyConfig",
    "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM",
    "AutoModelForSequenceClassification": "modeling_tiny.TinyForSequenceClassification",
}


def custom_folder(folder: Path, head: str) -> Path:
    """A tiny model whose classes live in its folder, saved with a byte-level tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    folder.mkdir(parents=True)
    (folder / "configuration_tiny.py").write_text(CONFIGURATION)
    (folder / "modeling_tiny.py").write_text(MODELING)
    tokenizer = byte_bpe(["<|endoftext|>"])
    eos = tokenizer.eos_token_id
    config = {
        "model_type": "stagelab-tiny-custom",
        "auto_map": AUTO_MAP,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 2,
        "n_positions": 64,
        "vocab_size": len(tokenizer),
        "bos_token_id": eos,
        "eos_token_id": eos,
        "pad_token_id": eos,
        "id2label": {"0": "negative", "1": "positive"},
        "label2id": {"negative": 0, "positive": 1},
    }
    (folder / "config.json").write_text(json.dumps(config))
    # Built as people build theirs: transformers runs the folder's code.
    loaded = AutoConfig.from_pretrained(str(folder), trust_remote_code=True)
    auto = AutoModelForCausalLM if head == "lm" else AutoModelForSequenceClassification
    torch.manual_seed(0)
    auto.from_config(loaded, trust_remote_code=True).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def custom(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("remote-code")
    return {
        "lm": custom_folder(root / "tiny-lm", "lm"),
        "clf": custom_folder(root / "tiny-clf", "clf"),
    }


def test_an_output_of_a_model_with_its_own_code_is_tried_with_it(train_stage_of, custom, tmp_path):
    plan = f"""
name: t
stages:
  - name: s
    kind: pretrain
    objective: causal_lm
    model: {{path: {custom["lm"]}, trust_remote_code: true}}
    data: {{path: corpus.txt, max_length: 24}}
    batch_size: 4
    max_steps: 1
"""
    result = train_stage_of(plan)
    assert result.outcome == "finished"
    [out] = result.recipe.save()
    assert json.loads((out / CODE_FILE).read_text()) == {"trust_remote_code": True}
    assert json.loads((out / "config.json").read_text())["auto_map"]  # its code came along
    predictor = Predictor(out)
    assert type(predictor.model).__name__ == "TinyForCausalLM"
    answer = predictor.predict("the good day", Sampling(max_new_tokens=2, temperature=0))
    assert answer["tokens"] <= 2
    # A folder no allowing stage wrote is refused with a sentence, not a terminal prompt.
    bare = tmp_path / "bare"
    shutil.copytree(out, bare)
    (bare / CODE_FILE).unlink()
    with pytest.raises(OutputError, match="runs code from its folder to load .*auto_map"):
        Predictor(bare)


def test_an_ensemble_of_models_with_their_own_code_loads_them_again(train_stage_of, custom):
    member = f"{{path: {custom['clf']}, trust_remote_code: true}}"
    plan = f"""
name: t
stages:
  - name: vote
    kind: ensemble
    members: [{member}, {member}]
    combiner: average
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0.3, test_ratio: 0.3}}
"""
    result = train_stage_of(plan)
    assert result.outcome == "finished"
    [out] = result.recipe.save()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["trust_remote_code"] for m in manifest["members"]] == [True, True]
    ensemble = Ensemble.load(out)
    assert [type(m.model).__name__ for m in ensemble.members] == [
        "TinyForSequenceClassification"
    ] * 2
    probabilities = Predictor(out).predict("a great day")["labels"]
    assert sum(p["probability"] for p in probabilities) == pytest.approx(1.0, abs=1e-6)


def test_joint_members_of_a_model_with_its_own_code_are_tried_with_it(
    train_stage_of, custom, scored_csv
):
    data = f"{{path: {scored_csv}, max_length: 24, eval_ratio: 0.25}}"
    plan = f"""
name: t
stages:
  - name: both
    kind: joint
    model: {{path: {custom["clf"]}, trust_remote_code: true}}
    members:
      - {{name: mood, data: {data}}}
      - {{name: strength, task: sequence_regression, data: {data.replace("{", "{label_column: score, ", 1)}}}
    batch_size: 4
    max_steps: 1
"""
    result = train_stage_of(plan)
    assert result.outcome == "finished"
    result.recipe.save()
    out = result.ctx.output_dir
    for member in ("mood", "strength"):
        assert (out / member / CODE_FILE).exists()
    assert Predictor(out / "strength").predict("a great day")["task"] == "sequence_regression"


def test_a_teacher_with_its_own_code_is_loaded_with_the_allowance(train_stage_of, custom):
    model = f"{{path: {custom['clf']}, trust_remote_code: true}}"
    plan = f"""
name: t
stages:
  - name: student
    kind: distill
    teacher: {model}
    model: {model}
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0.25}}
    batch_size: 4
    max_steps: 1
"""
    result = train_stage_of(plan)
    assert result.outcome == "finished"
    assert type(result.recipe.teacher).__name__ == "TinyForSequenceClassification"
    # The student's tokenizer has no padding token: eos pads, and the stage says so.
    [note] = [e.message for e in result.events("tokenizer")]
    assert note.startswith("the tokenizer has no padding token")
