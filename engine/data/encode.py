"""Tokenisation of stage data per objective, and padding of batches.

`datasets.map` caches its results next to the loaded data in the workspace cache, so a
resumed or repeated stage does not tokenise again.
"""

from __future__ import annotations

from typing import Any

import datasets
import torch

from engine.data.chat import encode_chat
from engine.spec.settings import DataSource

IGNORE = -100  # label value the losses skip


def encode(
    table: datasets.Dataset,
    tokenizer: Any,
    source: DataSource,
    objective: str,
    labels: list[str] | None,
) -> datasets.Dataset:
    """Tokenise a table into `input_ids` (+ `labels` for supervised objectives).

    Args:
        table: raw rows.
        tokenizer: a Hugging Face tokenizer.
        source: column names and max length.
        objective: masked_lm, causal_lm, sequence_classification, token_classification or
            causal_lm_sft.
        labels: label names of a classification task.
    """
    max_len = source.max_length
    label_id = {name: i for i, name in enumerate(labels or [])}

    def plain(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(batch[source.text_column], truncation=True, max_length=max_len)
        return {"input_ids": enc["input_ids"]}

    def sequence(batch: dict[str, list]) -> dict[str, list]:
        pair = batch[source.text_pair_column] if source.text_pair_column else None
        enc = tokenizer(batch[source.text_column], pair, truncation=True, max_length=max_len)
        out = {"input_ids": enc["input_ids"]}
        if "token_type_ids" in enc:
            out["token_type_ids"] = enc["token_type_ids"]
        out["labels"] = [label_id[str(v)] for v in batch[source.label_column]]
        return out

    def tokens(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(
            batch[source.text_column], is_split_into_words=True, truncation=True, max_length=max_len
        )
        aligned = []
        for row, tags in enumerate(batch[source.label_column]):
            previous, row_labels = None, []
            # Only the first piece of each word carries its tag; the rest are skipped.
            for word in enc.word_ids(row):
                row_labels.append(
                    IGNORE if word is None or word == previous else label_id[str(tags[word])]
                )
                previous = word
            aligned.append(row_labels)
        return {"input_ids": enc["input_ids"], "labels": aligned}

    def instructions(batch: dict[str, list]) -> dict[str, list]:
        ids, targets = [], []
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        for prompt, response in zip(
            batch[source.prompt_column], batch[source.response_column], strict=True
        ):
            p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            r = tokenizer(" " + response, add_special_tokens=False)["input_ids"] + eos
            row = (p + r)[:max_len]
            ids.append(row)
            # No loss on the prompt: the model learns to answer, not to ask.
            targets.append(([IGNORE] * len(p) + r)[:max_len])
        return {"input_ids": ids, "labels": targets}

    def chat(batch: dict[str, list]) -> dict[str, list]:
        encoded = [
            encode_chat(messages, tokenizer, max_len, IGNORE)
            for messages in batch[source.messages_column]
        ]
        return {"input_ids": [e[0] for e in encoded], "labels": [e[1] for e in encoded]}

    if objective in ("masked_lm", "causal_lm"):
        fn = plain
    elif objective == "sequence_classification":
        fn = sequence
    elif objective == "token_classification":
        fn = tokens
    elif objective == "causal_lm_sft":
        fn = instructions if source.prompt_column else chat if source.messages_column else plain
    else:
        raise ValueError(f"no encoding for objective '{objective}'")
    # Rows were filtered before (engine.spec.rows.keep_row); none is dropped here, so the
    # LR preview, which cannot tokenise, counts the same rows. A short row whose batch has
    # no target is handled by the token-weighted losses.
    return table.map(fn, batched=True, remove_columns=table.column_names)


def pad_batch(rows: list[dict[str, list]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of encoded rows to the longest one and stack them into tensors."""
    width = max(max(len(r["input_ids"]) for r in rows), 1)
    batch: dict[str, torch.Tensor] = {}
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        mask[i, :n] = 1
    batch["input_ids"], batch["attention_mask"] = ids, mask
    if "token_type_ids" in rows[0]:
        types = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            types[i, : len(r["token_type_ids"])] = torch.tensor(r["token_type_ids"])
        batch["token_type_ids"] = types
    if "labels" in rows[0]:
        first = rows[0]["labels"]
        if isinstance(first, list):
            labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
            for i, r in enumerate(rows):
                labels[i, : len(r["labels"])] = torch.tensor(r["labels"])
        else:
            labels = torch.tensor([r["labels"] for r in rows], dtype=torch.long)
        batch["labels"] = labels
    return batch
