"""A checkpoint that lacks weights the stage needs is said so, in the record and in
`show`: a bare encoder (as sentence-embedding packages ship) has no masked-LM head."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def bare_encoder(data_dir: Path, tmp_path: Path) -> Path:
    """A BertModel without any head, saved like a sentence-transformers checkpoint."""
    from transformers import BertConfig, BertModel

    from engine.data.tokenizer import train_tokenizer

    tokenizer = train_tokenizer("bert", (data_dir / "corpus.txt").read_text().splitlines(), 200)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    folder = tmp_path / "bare-encoder"
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def plan(kind_lines: str, folder: Path) -> str:
    return f"""
name: bare
stages:
  - name: s
{kind_lines}
    model: {{path: {folder}}}
    batch_size: 8
    max_steps: 2
"""


def model_events(result):
    return [(e.level, e.message) for e in result.events("model")]


def test_a_missing_language_model_head_is_a_warning(train_stage_of, bare_encoder):
    text = plan(
        "    kind: pretrain\n    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}",
        bare_encoder,
    )
    result = train_stage_of(text)
    assert result.outcome == "finished"
    ((level, message),) = model_events(result)
    assert level == "warning"
    assert "cls.predictions" in message and "start random" in message


def test_a_new_task_head_is_only_noted(train_stage_of, bare_encoder):
    text = plan(
        "    kind: train\n    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}",
        bare_encoder,
    )
    ((level, message),) = model_events(train_stage_of(text))
    assert level == "info" and "new task head" in message and "classifier" in message


def test_a_classifier_on_a_masked_lm_output_is_not_a_warning(train_stage_of):
    # Masked-LM models are saved without BERT's pooler; the classifier needs it new anyway.
    two = """
name: two
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 2
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 2
"""
    mlm = train_stage_of(two).recipe.save()[0]
    result = train_stage_of(two, index=1, outputs={"mlm": mlm})
    ((level, message),) = model_events(result)
    assert level == "info" and "bert.pooler" in message
