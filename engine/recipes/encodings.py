"""Rows that carry several encodings of the same text, for models that read it with
tokenizers of their own (a distillation teacher, mutual members).

Where the outputs are labels or values, two models never compare token ids: each reads
the text with its own tokenizer and they compare outputs row by row. A row then holds the
batch's own encoding (`input_ids`, `attention_mask`, `token_type_ids`, `labels`) and each
other one under a prefix (`teacher_input_ids` …). The rows stay one list, so one seeded
order and one `[epoch, batch]` position draw both encodings of the same examples, and a
resumed stage draws them exactly as before. Padding fills every encoding with the batch's
pad id; a model's own pad id is written back where its attention mask is 0 (models that
number positions from the padding, as RoBERTa does, need it).
"""

from __future__ import annotations

import json
from typing import Any

import torch

from engine.spec.vocab_files import vocab_difference

# What a model reads of a batch (one encoding's keys, without a prefix).
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Tasks whose models may each read the text with their own tokenizer.
READ_APART = ("sequence_classification", "sequence_regression")


def _pipeline(tokenizer: Any) -> Any:
    """What a tokenizer does to text: its fast pipeline (without the truncation and padding
    a call leaves set), or for a slow one its class and vocabulary."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return (type(tokenizer).__name__, tokenizer.get_vocab())
    data = json.loads(backend.to_str())
    data.pop("truncation", None)
    data.pop("padding", None)
    return data


def same_tokenizer(a: Any, b: Any) -> bool:
    """Whether two tokenizers turn every text into the same ids."""
    return a is b or (a.get_vocab() == b.get_vocab() and _pipeline(a) == _pipeline(b))


def vocabulary_problem(ours: Any, theirs: Any, names: tuple[str, str]) -> str | None:
    """How two tokenizers' vocabularies differ (the first differing ids), or None."""
    return vocab_difference(ours.get_vocab(), theirs.get_vocab(), *names)


def with_encoding(rows: list[dict], other: list[dict], prefix: str) -> list[dict]:
    """`rows` with `other`'s encoding of the same examples added under `prefix` (its labels,
    the same examples' labels, left out)."""
    if len(rows) != len(other):  # never expected: encoding keeps every row
        raise RuntimeError(f"{len(other)} rows encoded for '{prefix}', not {len(rows)}")
    return [
        dict(row, **{prefix + k: v for k, v in theirs.items() if k != "labels"})
        for row, theirs in zip(rows, other, strict=True)
    ]


def model_inputs(batch: dict[str, torch.Tensor], prefix: str = "", pad_id: int | None = None):
    """The inputs a model reads of a batch: its encoding's keys without their prefix, its
    own pad id where the encoding is padding."""
    picked = {k: batch[prefix + k] for k in MODEL_INPUTS if prefix + k in batch}
    if prefix and pad_id is not None:
        padding = picked["attention_mask"] == 0
        picked["input_ids"] = picked["input_ids"].masked_fill(padding, pad_id)
    return picked
