"""Tokenizers as they come (issue 29): a loaded tokenizer made ready to pad batches, padded
on the side its use needs, and the model fitted to it.

Most decoders' tokenizers (GPT-2's, Llama's, Phi's, a byte-level BPE saved without one)
have no padding token, and every recipe pads with `pad_token_id`. The end-of-text token
pads instead: padded positions are hidden by the attention mask and carry no target, so
which id fills them changes nothing. A tokenizer with neither gets a new token, and the
model one more embedding row.
"""

from __future__ import annotations

from typing import Any

import torch

NEW_PAD = "<|pad|>"

# Objectives whose output generates text: saved left-padded, the side batched generation
# needs (a new token follows the last real one). Training pads right whatever the side is
# (engine/data/encode.py's pad_batch), as does a classifier, whose last real token a
# decoder's head reads.
GENERATIVE = ("causal_lm", "causal_lm_sft", "preference")


def ready_tokenizer(tokenizer: Any, objective: str | None = None) -> list[str]:
    """Give `tokenizer` a padding token if it has none, and the padding side of
    `objective` (left for generation, right otherwise; unchanged without an objective).

    Returns:
        sentences saying what was changed (recorded by the stage as info events).
    """
    notes = []
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
            notes.append(
                f"the tokenizer has no padding token: batches are padded with its end-of-text "
                f"token {tokenizer.eos_token!r} (id {tokenizer.pad_token_id}), which the "
                "attention mask hides from the model and the loss"
            )
        else:
            tokenizer.add_special_tokens({"pad_token": NEW_PAD})
            notes.append(
                f"the tokenizer has neither a padding nor an end-of-text token: a new padding "
                f"token {NEW_PAD!r} (id {tokenizer.pad_token_id}) is added, and the model gets "
                "an embedding row for it"
            )
    if objective is not None:
        side = "left" if objective in GENERATIVE else "right"
        tokenizer.padding_side = side
        # save_pretrained writes the init arguments, not the attribute set after them.
        tokenizer.init_kwargs["padding_side"] = side
    return notes


def fit_to_tokenizer(model: torch.nn.Module, tokenizer: Any) -> None:
    """An embedding row for every id of `tokenizer` (a padding token it was given), and
    the model's padding id the tokenizer's: a decoder's sequence classifier finds each
    row's last token by it, and generation stops padding with it."""
    embeddings = model.get_input_embeddings()
    if embeddings is not None and len(tokenizer) > embeddings.num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    pad = tokenizer.pad_token_id
    if pad is None:
        return
    model.config.pad_token_id = pad
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        generation.pad_token_id = pad
