"""Tokenisation of stage data per objective, and padding of batches.

`datasets.map` caches its results next to the loaded data in the workspace cache, so a
resumed or repeated stage does not tokenise again.
"""

from __future__ import annotations

import itertools
from typing import Any

import datasets
import numpy as np
import torch

from engine.data.chat import chat_pair, encode_chat
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

    # A class id per text, or the number itself for regression.
    target = float if objective == "sequence_regression" else (lambda v: label_id[str(v)])

    def sequence(batch: dict[str, list]) -> dict[str, list]:
        pair = batch[source.text_pair_column] if source.text_pair_column else None
        enc = tokenizer(batch[source.text_column], pair, truncation=True, max_length=max_len)
        out = {"input_ids": enc["input_ids"]}
        if "token_type_ids" in enc:
            out["token_type_ids"] = enc["token_type_ids"]
        out["labels"] = [target(v) for v in batch[source.label_column]]
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

    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    templated = bool(getattr(tokenizer, "chat_template", None))

    def exchange(prompt: str, response: str) -> tuple[list[int], list[int]]:
        """Prompt and response ids: one chat exchange with the tokenizer's template, else
        `prompt response<eos>`."""
        if templated:
            return chat_pair(prompt, response, tokenizer)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return p, tokenizer(" " + response, add_special_tokens=False)["input_ids"] + eos

    def instructions(batch: dict[str, list]) -> dict[str, list]:
        ids, targets = [], []
        for prompt, response in zip(
            batch[source.prompt_column], batch[source.response_column], strict=True
        ):
            p, r = exchange(prompt, response)
            row = (p + r)[:max_len]
            ids.append(row)
            # No loss on the prompt: the model learns to answer, not to ask.
            targets.append(([IGNORE] * len(p) + r)[:max_len])
        return {"input_ids": ids, "labels": targets}

    def preference(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"input_ids": [], "labels": [], "rejected_input_ids": []}
        out["rejected_labels"] = []
        prompts = batch[source.prompt_column or "prompt"]
        for prompt, chosen, rejected in zip(
            prompts, batch[source.chosen_column], batch[source.rejected_column], strict=True
        ):
            for prefix, response in (("", chosen), ("rejected_", rejected)):
                p, r = exchange(prompt, response)
                ids, targets = preference_row(p, r, max_len)
                out[f"{prefix}input_ids"].append(ids)
                out[f"{prefix}labels"].append(targets)
        return out

    def chat(batch: dict[str, list]) -> dict[str, list]:
        encoded = [
            encode_chat(messages, tokenizer, max_len, IGNORE)
            for messages in batch[source.messages_column]
        ]
        return {"input_ids": [e[0] for e in encoded], "labels": [e[1] for e in encoded]}

    if objective in ("masked_lm", "causal_lm"):
        fn = plain
    elif objective in ("sequence_classification", "sequence_regression"):
        fn = sequence
    elif objective == "token_classification":
        fn = tokens
    elif objective == "causal_lm_sft":
        fn = instructions if source.prompt_column else chat if source.messages_column else plain
    elif objective == "preference":
        fn = preference
    else:
        raise ValueError(f"no encoding for objective '{objective}'")
    # Rows were filtered before (engine.spec.rows.keep_row); none is dropped here, so the
    # LR preview, which cannot tokenise, counts the same rows. A short row whose batch has
    # no target is handled by the token-weighted losses.
    return table.map(fn, batched=True, remove_columns=table.column_names)


def preference_row(prompt: list[int], response: list[int], max_len: int) -> tuple[list, list]:
    """Prompt + response ids and their targets (the response only) within `max_len`.

    A long prompt loses its start, not the response: the comparison is about the responses,
    so each keeps at least half the length (and all of it when the prompt is short).
    """
    keep_response = response[: max(max_len - len(prompt), max_len // 2)]
    keep_prompt = prompt[max(len(prompt) - (max_len - len(keep_response)), 0) :]
    ids = keep_prompt + keep_response
    return ids, [IGNORE] * len(keep_prompt) + keep_response


def pad_batch(
    rows: list[dict[str, list]], pad_id: int, multiple: int = 1, limit: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad a list of encoded rows to the longest one and stack them into tensors.

    Args:
        rows: encoded rows (lists of ids, labels).
        pad_id: the tokenizer's padding id.
        multiple: round the width up to a multiple of this (tensor cores want 8) …
        limit: … but never past this width (the longest row the model will see).

    A row may carry other sequences under a prefix, each padded on its own into
    `<prefix>*` tensors: a preference pair's `rejected_input_ids` and `rejected_labels`, or
    the same text as another model's tokenizer encodes it (`teacher_input_ids` …).
    """
    batch = _pad(rows, pad_id, "", multiple, limit)
    for key in rows[0]:
        if key.endswith("input_ids") and key != "input_ids":
            batch.update(_pad(rows, pad_id, key[: -len("input_ids")], multiple, limit))
    return batch


def _filled(seqs: list[list], width: int, fill: int) -> torch.Tensor:
    """Rows of different lengths, left-aligned in a (rows, width) tensor of `fill`: one
    tensor made from all the values, then one masked write (not a copy per row)."""
    lengths = [len(s) for s in seqs]
    out = torch.full((len(seqs), width), fill, dtype=torch.long)
    # np.fromiter reads the Python ints about 8x faster than torch.tensor(list).
    values = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=sum(lengths))
    out[torch.arange(width) < torch.tensor(lengths)[:, None]] = torch.from_numpy(values)
    return out


def _pad(
    rows: list[dict[str, list]], pad_id: int, prefix: str, multiple: int, limit: int | None
) -> dict[str, torch.Tensor]:
    key = f"{prefix}input_ids"
    longest = max(max(len(r[key]) for r in rows), 1)
    width = -(-longest // multiple) * multiple
    if limit is not None:
        width = max(min(width, limit), longest)
    seqs = [r[key] for r in rows]
    batch: dict[str, torch.Tensor] = {key: _filled(seqs, width, pad_id)}
    lengths = torch.tensor([len(s) for s in seqs])
    batch[f"{prefix}attention_mask"] = (torch.arange(width) < lengths[:, None]).long()
    # Zero-filled: token types, and a packed row's positions and row numbers
    # (engine.train.packing; padding is row 0).
    for name in ("token_type_ids", "position_ids", "segment_ids"):
        if f"{prefix}{name}" in rows[0]:
            batch[f"{prefix}{name}"] = _filled([r[f"{prefix}{name}"] for r in rows], width, 0)
    if f"{prefix}labels" in rows[0]:
        first = rows[0][f"{prefix}labels"]
        if isinstance(first, list):
            labels = _filled([r[f"{prefix}labels"] for r in rows], width, IGNORE)
        else:
            # Numbers of a regression stay floats; class ids are longs.
            dtype = torch.float32 if isinstance(first, float) else torch.long
            labels = torch.tensor([r[f"{prefix}labels"] for r in rows], dtype=dtype)
        batch[f"{prefix}labels"] = labels
    return batch
