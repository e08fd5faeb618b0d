"""Freezing embeddings and the first N transformer layers, and gradual unfreezing from the
top down on a step schedule (ULMFiT-style)."""

from __future__ import annotations

import torch

from engine.spec.settings import Freezing


def transformer_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's stack of transformer blocks, bottom first.

    Found as the longest ModuleList of the backbone, which covers BERT (`encoder.layer`),
    GPT-2 (`h`) and most other Hugging Face architectures without a table per model.
    """
    backbone = getattr(model, "base_model", model)
    best: list[torch.nn.Module] = []
    for module in backbone.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > len(best):
            best = list(module)
    return best


def embedding_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters of the backbone's embeddings (token, position, type, their norm)."""
    backbone = getattr(model, "base_model", model)
    layer_params = {id(p) for layer in transformer_layers(model) for p in layer.parameters()}
    params = []
    for name, param in backbone.named_parameters():
        if id(param) in layer_params:
            continue
        if "embed" in name or name.split(".")[0] in ("wte", "wpe"):
            params.append(param)
    return params


def frozen_layer_count(freezing: Freezing, step: int) -> tuple[int, bool]:
    """How many bottom layers are frozen, and whether embeddings are, after `step` steps."""
    layers, embeddings = freezing.layers, freezing.embeddings
    plan = freezing.unfreeze
    if plan is None:
        return layers, embeddings
    released = (step // plan.every_steps) * plan.layers
    remaining = max(layers - released, 0)
    if embeddings and plan.embeddings_last:
        # Embeddings go one interval after the last layer has been released.
        rounds_for_layers = -(-layers // plan.layers) if layers else 0
        embeddings = step // plan.every_steps <= rounds_for_layers
    return remaining, embeddings


def apply_freezing(
    model: torch.nn.Module,
    freezing: Freezing,
    step: int,
    trainable: set[int] | None = None,
) -> tuple[int, bool]:
    """Set `requires_grad` for the freezing state at `step`; returns (layers, embeddings)
    frozen. Only the named parts are touched, so heads always train.

    `trainable` holds the ids of the parameters the stage may train at all (with LoRA: the
    adapters and a new head); freezing narrows that set and never releases the others,
    so an adapter stage's base weights stay fixed however the layers unfreeze.
    """
    layers, embeddings = frozen_layer_count(freezing, step)
    # The state changes a few times a stage: walking every module each step is skipped.
    if getattr(model, "_stagelab_frozen", None) == (layers, embeddings):
        return layers, embeddings

    def allowed(param: torch.nn.Parameter) -> bool:
        return trainable is None or id(param) in trainable

    for i, layer in enumerate(transformer_layers(model)):
        for param in layer.parameters():
            param.requires_grad_(i >= layers and allowed(param))
    if freezing.embeddings:
        for param in embedding_parameters(model):
            param.requires_grad_(not embeddings and allowed(param))
    model._stagelab_frozen = (layers, embeddings)
    return layers, embeddings
