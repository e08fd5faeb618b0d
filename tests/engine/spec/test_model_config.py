"""What a brought model's config.json tells validate, read with json alone (issue 29,
item 2): a model that would run its folder's code is refused with the setting that allows
it; a data source without max_length gets the positions of the models reading it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.spec import load_plan_text
from engine.spec.model_config import settle_max_lengths
from engine.spec.problems import PlanInvalid


@pytest.fixture(autouse=True)
def data_files(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text("a good day\na bad day\n")
    (tmp_path / "sentiment.csv").write_text("text,label\ngood,pos\nbad,neg\n")


def folder(root: Path, name: str, **config) -> str:
    path = root / name
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    return name


def plan(model: str, data: str = "{path: corpus.txt}", extra: str = "") -> str:
    return f"""
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {model}
    data: {data}
    max_steps: 2
  - name: cls
    kind: train
    task: sequence_classification
    model: {{from_stage: lm{extra}}}
    data: {{path: sentiment.csv}}
    max_steps: 2
"""


def problems(text: str, plan_dir: Path) -> list[str]:
    with pytest.raises(PlanInvalid) as refused:
        load_plan_text(text, plan_dir=plan_dir)
    return [str(p) for p in refused.value.problems]


def test_a_model_with_its_own_code_is_refused_until_allowed(tmp_path: Path):
    custom = folder(tmp_path, "custom", model_type="opt", auto_map={"AutoConfig": "my.MyConfig"})
    unknown = folder(tmp_path, "unknown", model_type="not-a-family-transformers-has")
    said = problems(plan(f"{{path: {custom}}}"), tmp_path)
    assert said == [
        "stages[0].model.trust_remote_code: loading this model runs code from its folder: "
        "its config.json names its own classes (auto_map); if you trust that code, set "
        "model.trust_remote_code: true",
        # The next stage loads the first one's output, written with the same code.
        "stages[1].model.trust_remote_code: loading this model runs code from its folder: "
        "its config.json names its own classes (auto_map); if you trust that code, set "
        "model.trust_remote_code: true",
    ]
    [first, _] = problems(plan(f"{{path: {unknown}}}"), tmp_path)
    assert "the installed transformers does not know its model type 'not-a-family" in first
    allowed = plan(
        f"{{path: {custom}, trust_remote_code: true}}", extra=", trust_remote_code: true"
    )
    load_plan_text(allowed, plan_dir=tmp_path)  # no problem left
    # Families transformers has load without it.
    for family in ("opt", "phi", "xlm-roberta", "deberta-v2", "gpt2"):
        text = plan(f"{{path: {folder(tmp_path, family, model_type=family)}}}")
        if family in ("xlm-roberta", "deberta-v2"):  # encoders: validate refuses causal_lm
            text = text.replace("objective: causal_lm", "objective: masked_lm")
        load_plan_text(text, plan_dir=tmp_path)


def test_max_length_defaults_to_the_models_positions(tmp_path: Path):
    small = folder(tmp_path, "small", model_type="opt", max_position_embeddings=64)
    long = folder(tmp_path, "long", model_type="llama", max_position_embeddings=4096)
    roberta = folder(
        tmp_path, "roberta", model_type="roberta", max_position_embeddings=66, pad_token_id=1
    )
    gpt2 = folder(tmp_path, "gpt2", model_type="gpt2", n_positions=96)

    def settled(model: str, data: str = "{path: corpus.txt}", objective="causal_lm") -> list[int]:
        text = plan(model, data).replace("objective: causal_lm", f"objective: {objective}")
        loaded = load_plan_text(text, plan_dir=tmp_path)
        settle_max_lengths(loaded, tmp_path)
        return [s.data.max_length for s in loaded.stages]

    # The later stage starts from the first one's output: the same positions.
    assert settled(f"{{path: {small}}}") == [64, 64]
    assert settled(f"{{path: {long}}}") == [512, 512]  # capped
    # Positions after the padding offset (an encoder: validate refuses causal_lm).
    assert settled(f"{{path: {roberta}}}", objective="masked_lm") == [64, 64]
    assert settled(f"{{path: {gpt2}}}") == [96, 96]
    assert settled("{builtin: gpt2-tiny}") == [128, 128]  # today's default
    # A plan's own max_length is kept.
    assert settled(f"{{path: {small}}}", "{path: corpus.txt, max_length: 32}") == [32, 64]
