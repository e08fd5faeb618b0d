"""Which model families `grow` can deepen (and a distill stage's `student_layers` can cut),
and where each keeps what the surgery touches. Plain data, keyed by config.json's
`model_type`: validate reads it with json (engine/spec/grow_distill_checks.py), the
surgery with the loaded model (engine/models/grow.py), so both say the same thing.

Two kinds of layer are known (docs/models.md, "Growing"):

* post-LayerNorm encoders (`LN(x + f(x))`: BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa-v2,
  DistilBERT): a new layer starts as the identity with its output projections zeroed and
  the LayerNorm's affine part moved to the top of each run of new layers;
* pre-norm blocks (`x + f(norm(x))`: GPT-2, Llama, Mistral, Qwen2/3, Gemma 1-3, Phi, Phi-3,
  OPT, GPT-NeoX, ModernBERT): zeroing the output projections (Llama's `o_proj` and
  `down_proj`, as LLaMA Pro does) makes a new block add nothing to its input. Exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GrowFamily:
    """Where a family keeps its layer stack and the parts of a layer the surgery touches."""

    stack: str  # the layer ModuleList, as named in state-dict keys below the backbone
    projections: tuple[str, ...]  # output projections of a layer's sublayers (zeroed)
    post_norms: tuple[str, ...] = ()  # post-LN norms after the residual sums, in order
    # (config key, value it must have, why not otherwise): a family's variants that differ.
    needs: tuple[tuple[str, Any, str], ...] = ()


_BERT = GrowFamily(
    stack="encoder.layer",
    projections=("attention.output.dense", "output.dense"),
    post_norms=("attention.output.LayerNorm", "output.LayerNorm"),
)
_LLAMA = GrowFamily(stack="layers", projections=("self_attn.o_proj", "mlp.down_proj"))

GROWABLE: dict[str, GrowFamily] = {
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "camembert": _BERT,
    "electra": _BERT,
    "deberta-v2": _BERT,
    "distilbert": GrowFamily(
        stack="transformer.layer",
        projections=("attention.out_lin", "ffn.lin2"),
        post_norms=("sa_layer_norm", "output_layer_norm"),
    ),
    "modernbert": GrowFamily(stack="layers", projections=("attn.Wo", "mlp.Wo")),
    "gpt2": GrowFamily(stack="h", projections=("attn.c_proj", "mlp.c_proj")),
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": _LLAMA,
    "gemma2": _LLAMA,
    "gemma3_text": _LLAMA,
    "phi3": _LLAMA,
    # Phi's block is parallel (x + attn(LN(x)) + mlp(LN(x))): both outputs zeroed.
    "phi": GrowFamily(stack="layers", projections=("self_attn.dense", "mlp.fc2")),
    "gpt_neox": GrowFamily(stack="layers", projections=("attention.dense", "mlp.dense_4h_to_h")),
    "opt": GrowFamily(
        stack="decoder.layers",
        projections=("self_attn.out_proj", "fc2"),
        needs=(
            (
                "do_layer_norm_before",
                True,
                "this OPT model normalises after its layers (do_layer_norm_before: false, as "
                "opt-350m does), and only pre-LayerNorm OPT layers are copied",
            ),
        ),
    ),
}

# Families refused with their own reason; any other is refused as unknown.
REFUSED: dict[str, str] = {
    "albert": "ALBERT shares one set of layer weights among all its layers, so there is no "
    "layer of its own to copy, and a new repeat cannot start as the identity without "
    "changing all the others; to run the shared layer more times, raise num_hidden_layers "
    "in its config.json instead (same weights, more compute)",
}

# Per-layer settings in a config, one entry per layer: the grown model's entry i is the
# one of the layer it copies (sliding or full attention stays what it was).
PER_LAYER_KEYS = ("layer_types",)

# How configs name their depth (BERT and most: num_hidden_layers; GPT-2; DistilBERT).
LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers")


def config_layers(config: dict[str, Any]) -> int | None:
    """The number of layers a config.json names, if it names one."""
    for key in LAYER_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def grow_refusal(model_type: str, config: dict[str, Any] | None = None) -> str | None:
    """Why a model of this family (and config, where the family has variants) cannot grow
    or be cut, as the end of a sentence; None where it can."""
    if model_type in REFUSED:
        return REFUSED[model_type]
    family = GROWABLE.get(model_type)
    if family is None:
        known = ", ".join(sorted(GROWABLE))
        return (
            f"this model is a '{model_type}', whose layers Stagelab does not know how to "
            f"copy (where its output projections, normalisation and per-layer state are); "
            f"the families it grows are {known}"
        )
    for key, wanted, why in family.needs:
        if config is not None and config.get(key, wanted) != wanted:
            return why
    return None
