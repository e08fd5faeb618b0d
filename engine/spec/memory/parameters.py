"""Parameters of a stage's model counted from its shape (layers, width, vocabulary), for
the memory estimate before a run: no torch, no download. The formulas follow the
transformers classes the engine builds (BERT, GPT-2, Llama-style, GPT-NeoX) and are
checked against real models in tests/app/test_memory_estimate.py. Torch- and Qt-free."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

LLAMA_STYLE = ("llama", "qwen2", "mistral")
DEFAULT_LABELS = 2  # a classification head before the data is read: a few numbers only


@dataclass(frozen=True)
class Shape:
    """A transformer's size. `kv_heads` < `heads` for grouped-query attention."""

    family: str  # 'bert', 'gpt2', 'llama', 'qwen2', 'mistral', 'gpt_neox'
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    positions: int
    kv_heads: int = 0
    tied: bool = True  # the LM head shares the input embeddings

    @property
    def kv_width(self) -> int:
        return self.hidden * (self.kv_heads or self.heads) // self.heads


@dataclass(frozen=True)
class Count:
    """Parameters by part: embeddings, one layer, everything after the layers."""

    embeddings: int
    per_layer: int
    layers: int
    head: int

    @property
    def total(self) -> int:
        return self.embeddings + self.per_layer * self.layers + self.head


def shape_from_builtin(name: str, vocab: int, max_length: int) -> Shape | None:
    """The shape of a built-in model ('bert-tiny') with the stage's vocabulary."""
    from engine.spec.builtins import parse_builtin

    try:
        family, size = parse_builtin(name)
    except (KeyError, ValueError):
        return None
    return Shape(
        family=family,
        layers=size.layers,
        hidden=size.hidden,
        heads=size.heads,
        intermediate=size.intermediate,
        vocab=vocab,
        positions=max(512, max_length),
        kv_heads=size.heads,
        tied=family in ("bert", "gpt2"),  # the engine unties Llama-style and NeoX heads
    )


def shape_from_config(folder: Path) -> Shape | None:
    """The shape a saved model's config.json describes, None if it cannot be read."""
    try:
        config: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    family = str(config.get("model_type", ""))
    pick = lambda *keys, default=0: next(  # noqa: E731
        (int(config[k]) for k in keys if config.get(k) is not None), default
    )
    hidden = pick("hidden_size", "n_embd", "d_model")
    if not hidden:
        return None
    return Shape(
        family=family,
        layers=pick("num_hidden_layers", "n_layer"),
        hidden=hidden,
        heads=pick("num_attention_heads", "n_head", default=1),
        intermediate=pick("intermediate_size", "n_inner", default=4 * hidden),
        vocab=pick("vocab_size"),
        positions=pick("max_position_embeddings", "n_positions"),
        kv_heads=pick("num_key_value_heads", default=0),
        tied=bool(config.get("tie_word_embeddings", family not in LLAMA_STYLE + ("gpt_neox",))),
    )


def with_layers(shape: Shape, layers: int) -> Shape:
    return replace(shape, layers=layers)


def count(shape: Shape, head: str, labels: int = DEFAULT_LABELS) -> Count:
    """Parameters of `shape` with `head`: 'masked_lm', 'causal_lm', 'sequence_classification'
    or 'token_classification'."""
    h, i, v, p = shape.hidden, shape.intermediate, shape.vocab, shape.positions
    kv = shape.kv_width
    if shape.family == "bert":
        embeddings = v * h + p * h + 2 * h + 2 * h  # words, positions, 2 token types, norm
        layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
        heads = {
            "masked_lm": h * h + h + 2 * h + v,  # transform, norm, decoder bias (weights tied)
            "sequence_classification": h * h + h + h * labels + labels,  # pooler, classifier
            "token_classification": h * labels + labels,
        }
        final = 0
    elif shape.family == "gpt2":
        embeddings = v * h + p * h
        layer = 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h)
        heads = {"sequence_classification": h * labels, "token_classification": h * labels + labels}
        final = 2 * h
    elif shape.family == "gpt_neox":
        embeddings = v * h
        layer = 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h)
        heads = {"sequence_classification": h * labels, "token_classification": h * labels + labels}
        final = 2 * h
    else:  # Llama-style: no biases (Qwen2: on q, k, v), RMS norms, gated MLP
        bias = (h + 2 * kv) if shape.family == "qwen2" else 0
        embeddings = v * h
        layer = h * h + 2 * h * kv + h * h + bias + 3 * h * i + 2 * h
        heads = {"sequence_classification": h * labels, "token_classification": h * labels + labels}
        final = h
    lm_head = 0 if shape.tied else v * h
    head_params = heads.get(head, lm_head if head == "causal_lm" else 0)
    return Count(embeddings, layer, shape.layers, final + head_params)


# LoRA's wrapped linear modules per family: name -> (in features, out features) per layer.
def lora_modules(shape: Shape) -> dict[str, tuple[int, int]]:
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_width
    if shape.family == "bert":
        return {"query": (h, h), "key": (h, h), "value": (h, h), "dense": (h, h)}
    if shape.family == "gpt2":
        return {"c_attn": (h, 3 * h), "c_proj": (h, h), "c_fc": (h, i)}
    if shape.family == "gpt_neox":
        return {"query_key_value": (h, 3 * h), "dense": (h, h), "dense_h_to_4h": (h, i)}
    return {
        "q_proj": (h, h),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "o_proj": (h, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }


DEFAULT_LORA_TARGETS = {
    "bert": ["query", "value"],
    "gpt2": ["c_attn"],
    "gpt_neox": ["query_key_value"],
}


def lora_parameters(shape: Shape, rank: int, targets: list[str] | None) -> int:
    """Parameters of rank-`rank` adapters (A: in×r, B: r×out) on every layer's targets."""
    modules = lora_modules(shape)
    names = targets or DEFAULT_LORA_TARGETS.get(shape.family, ["q_proj", "v_proj"])
    per_layer = sum(rank * (modules[n][0] + modules[n][1]) for n in names if n in modules)
    return per_layer * shape.layers
