"""Model surgery on the layer stack: deepening a model (progressive stacking, block
expansion) and keeping a model's lowest layers (a distillation student started from its
teacher).

Both build a *fresh* model of the new depth from the old config and copy weights into it,
never a deep copy of layer modules: attention modules of decoders carry their layer index
(for the key/value cache), which a copied module would keep. The result is a plain model of
the same class, so `save_pretrained` writes a folder that plain `transformers` loads.

Which families can be copied, and where their output projections and norms are, is the
table in engine/spec/growable.py (validate reads the same table); others are refused with
a sentence saying why.
"""

from __future__ import annotations

import copy
import re

import torch

from engine.spec.growable import GROWABLE, PER_LAYER_KEYS, GrowFamily, grow_refusal


class GrowError(ValueError):
    """The model cannot be grown or cut as asked; the message says why."""


def family_of(model: torch.nn.Module) -> GrowFamily:
    """The family of a model, or a GrowError that says why it cannot be grown or cut."""
    config = model.config
    model_type = getattr(config, "model_type", "?")
    why = grow_refusal(model_type, config.to_dict())
    if why is not None:
        raise GrowError(f"grow and student_layers cannot copy this model's layers: {why}")
    return GROWABLE[model_type]


def layer_count(model: torch.nn.Module) -> int:
    """Number of transformer layers of a model (`n_layer`, `n_layers` are aliases)."""
    return int(model.config.num_hidden_layers)


def parameter_count(model: torch.nn.Module) -> int:
    """Parameters of a model, tied weights counted once."""
    return sum(p.numel() for p in model.parameters())


def grown_layers(layers: int, target: int, method: str) -> list[int]:
    """Which old layer each layer of the deeper model copies.

    `stack` (progressive stacking, Gong et al. 2019): new layer i copies old layer
    i mod n, so the old stack is repeated on top of itself. `interpolate`: each old layer
    is followed by its copies in place (layer i copies old layer ⌊i·n/target⌋).
    """
    if target <= layers:
        raise GrowError(f"target_layers: the model has {layers} layers; grow to more than that")
    if method == "stack":
        return [i % layers for i in range(target)]
    if method == "interpolate":
        return [i * layers // target for i in range(target)]
    raise GrowError(f"method: unknown growth method '{method}' (stack or interpolate)")


def copy_layers(model: torch.nn.Module, sources: list[int]) -> torch.nn.Module:
    """A fresh model of the same class whose layer i is a copy of `model`'s layer
    `sources[i]`; every other weight (embeddings, final norm, head) is copied as it is.

    Call after seeding: the fresh modules draw (then overwritten) initial weights.
    """
    family = family_of(model)
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.num_hidden_layers = len(sources)
    for key in PER_LAYER_KEYS:
        per_layer = getattr(config, key, None)
        if isinstance(per_layer, list) and len(per_layer) == layer_count(model):
            setattr(config, key, [per_layer[j] for j in sources])
    deeper = type(model)(config)
    if getattr(model, "generation_config", None) is not None:
        deeper.generation_config = copy.deepcopy(model.generation_config)
    old = model.state_dict()
    layer_key = re.compile(rf"^(.*?\b{re.escape(family.stack)})\.(\d+)\.(.+)$")
    state = {}
    for key, fresh in deeper.state_dict().items():
        match = layer_key.match(key)
        source = f"{match[1]}.{sources[int(match[2])]}.{match[3]}" if match else key
        # Buffers the old model does not keep (e.g. non-persistent ones) stay fresh.
        state[key] = old[source].detach().clone() if source in old else fresh
    deeper.load_state_dict(state)
    deeper.to(next(model.parameters()).dtype)
    return deeper


def grow_model(
    model: torch.nn.Module, target: int, method: str, *, identity_init: bool
) -> torch.nn.Module:
    """A deeper copy of `model` with `target` layers (see `grown_layers`).

    With `identity_init` the new layers start as the identity, so the deeper model computes
    the same function as the shallow one:

    * Pre-norm blocks (GPT-2, Llama and the decoders like it, `x + f(norm(x))`): the new
      layers' output projections are zeroed (LLaMA Pro's block expansion: `o_proj` and
      `down_proj`), so each new layer adds nothing to its input. Exact.
    * Post-LayerNorm encoders (BERT, `LN(x + f(x))`): zeroing the projections leaves `LN(x)`, which is
      not `x`. So below each run of new layers the last LayerNorm's affine part moves to the
      top of the run: the layer below then outputs the plain normalised vector `z`, each new
      layer's norms (scale 1, shift 0) return `z` again (it is normalised already; only the
      1e-12 epsilon and rounding differ), and the run's last norm applies the moved scale and
      shift. Equal up to float rounding.
    """
    sources = grown_layers(layer_count(model), target, method)
    deeper = copy_layers(model, sources)
    if identity_init:
        new = [i > 0 and sources[i] in sources[:i] for i in range(len(sources))]
        _make_identity(deeper, family_of(model), new)
    return deeper


def _layers(model: torch.nn.Module, family: GrowFamily) -> torch.nn.ModuleList:
    backbone = getattr(model, "base_model", model)
    return backbone.get_submodule(family.stack)


@torch.no_grad()
def _make_identity(model: torch.nn.Module, family: GrowFamily, new: list[bool]) -> None:
    layers = _layers(model, family)
    for i, layer in enumerate(layers):
        if new[i]:
            for name in family.projections:
                projection = layer.get_submodule(name)
                projection.weight.zero_()
                if projection.bias is not None:
                    projection.bias.zero_()
    if not family.post_norms:
        return
    i = 0
    while i < len(layers):
        if not new[i]:
            i += 1
            continue
        start = i
        while i < len(layers) and new[i]:
            i += 1
        below = layers[start - 1].get_submodule(family.post_norms[-1])
        scale, shift = below.weight.clone(), below.bias.clone()
        below.weight.fill_(1.0)
        below.bias.zero_()
        for layer in layers[start:i]:
            for name in family.post_norms:
                norm = layer.get_submodule(name)
                norm.weight.fill_(1.0)
                norm.bias.zero_()
        top = layers[i - 1].get_submodule(family.post_norms[-1])
        top.weight.copy_(scale)
        top.bias.copy_(shift)


def keep_lowest_layers(model: torch.nn.Module, layers: int) -> torch.nn.Module:
    """A copy of `model` with only its lowest `layers` layers (embeddings and head kept)."""
    have = layer_count(model)
    if layers > have:
        raise GrowError(f"student_layers: the model has only {have} layers (got {layers})")
    if layers == have:
        return model
    return copy_layers(model, list(range(layers)))
