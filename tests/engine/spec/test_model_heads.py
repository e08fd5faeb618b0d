"""validate refuses a stage whose brought model lacks the head it trains (issue 29, item 1),
from the folder's config.json and transformers' auto mappings read as text (no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.spec import PlanInvalid, load_plan_text
from engine.spec.model_heads import MAPPINGS, auto_mappings, head_problem

FAMILIES = "bert roberta albert distilbert modernbert gpt2 llama qwen2 phi opt gpt_neox gemma"


def test_the_mappings_read_as_text_are_transformers_own():
    from transformers.models.auto import modeling_auto

    read = auto_mappings()
    assert read is not None
    for name in set(MAPPINGS.values()):
        assert read[name] == frozenset(getattr(modeling_auto, name)), name


def folder(root: Path, model_type: str, **extra) -> Path:
    path = root / model_type
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": model_type, **extra}))
    return path


def plan(kind: str, model: Path) -> str:
    data = {
        "sft": "kind: train\n    task: causal_lm_sft\n    data: {path: instructions.jsonl, "
        "prompt_column: prompt, response_column: response}",
        "tag": "kind: train\n    task: token_classification\n    data: {path: entities.jsonl, "
        "text_column: tokens, label_column: tags}",
        "mlm": "kind: pretrain\n    data: {path: corpus.txt}",
        "classify": "kind: train\n    data: {path: sentiment.csv}",
    }[kind]
    return f"name: p\nstages:\n  - name: s\n    {data}\n    model: {{path: {model}}}\n"


def refusal(text: str, data_dir: Path) -> list[str]:
    try:
        load_plan_text(text, plan_dir=data_dir)
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("family", "kind", "expected"),
    [
        ("roberta", "sft", "a roberta model is a bidirectional encoder, so it cannot train "
         "supervised fine-tuning (causal_lm_sft); start from a decoder (gpt2, llama, qwen2 …) or train masked_lm"),
        ("albert", "sft", "an albert model has no causal-LM head in the installed "
         "transformers, so it cannot train supervised fine-tuning"),
        ("opt", "tag", "an opt model has no token-classification head"),
        ("llama", "mlm", "a llama model has no masked-LM head"),
        ("gpt2", "classify", None),
        ("modernbert", "tag", None),
        ("my-own-model", "sft", None),  # not a transformers family: trust_remote_code's
    ],
)  # fmt: skip
def test_a_missing_head_is_refused_by_validate(tmp_path, data_dir, family, kind, expected):
    problems = refusal(plan(kind, folder(tmp_path, family)), data_dir)
    heads = [p for p in problems if p.startswith("stages[0].model: ")]
    if expected is None:
        assert not heads, heads
    else:
        assert len(heads) == 1 and expected in heads[0], problems


def test_an_encoder_configured_as_a_decoder_may_train_causal_lm():
    assert head_problem("causal_lm", {"model_type": "bert", "is_decoder": True}) is None
    assert head_problem("causal_lm", {"model_type": "bert"}) is not None
    for family in FAMILIES.split():
        assert head_problem("sequence_classification", {"model_type": family}) is None
