"""Liger's fused Triton kernels in a stage's model (`kernels: liger`, issue 32 item 3):
RMSNorm, RoPE and SwiGLU/GeGLU swapped in the built model, and for a causal-LM head the
fused linear cross-entropy, which never materialises the [tokens, vocabulary] logits.

liger-kernel is an optional extra (`pip install 'stagelab[gpu]'`: it pulls Triton) and is
imported only here, only when a stage asks for it. The kernels go into the model instance
through liger's documented `apply_liger_kernel_to_<family>(model=...)`: parameter names,
checkpoints and outputs stay those of the plain model.
"""

from __future__ import annotations

import importlib.util
import inspect
import weakref
from typing import Any

import torch

from engine.spec.kernel_checks import NEEDS_CUDA, NOT_INSTALLED, family_refusal

# Models whose forward computes the causal-LM loss with Liger's fused linear cross-entropy.
_FUSED_LOSS: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()
# Stage kinds whose loss is the head's cross-entropy (engine.recipes.heads.head_loss);
# distillation and preference losses read the logits themselves.
_HEAD_LOSS_KINDS = ("pretrain", "train", "grow")


class KernelError(ValueError):
    """The stage asks for kernels this machine or model cannot have."""


def liger_installed() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def transformer_of(module: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a module: a PEFT model's base model, else itself."""
    get_base = getattr(module, "get_base_model", None)
    return get_base() if callable(get_base) else module


def apply_kernels(stage: Any, model: torch.nn.Module, device: torch.device) -> str | None:
    """Put Liger's kernels into `model` as `stage.kernels` asks; what was done, in words
    (None when the stage asks for none).

    Raises:
        KernelError: not on CUDA, liger-kernel not installed, or a family it does not cover.
    """
    if stage.kernels != "liger":
        return None
    if device.type != "cuda":
        raise KernelError(NEEDS_CUDA)
    if not liger_installed():
        raise KernelError(NOT_INSTALLED)
    import liger_kernel.transformers as liger

    inner = transformer_of(model)
    family = getattr(getattr(inner, "config", None), "model_type", None) or "unknown"
    refusal = family_refusal(family)
    if refusal:
        raise KernelError(refusal)
    apply = getattr(liger, f"apply_liger_kernel_to_{family}")
    objective = getattr(stage, "objective", None) or getattr(stage, "task", None)
    fused = stage.kind in _HEAD_LOSS_KINDS and objective in ("causal_lm", "causal_lm_sft")
    wanted = {"cross_entropy": False, "fused_linear_cross_entropy": fused, "model": inner}
    accepted = inspect.signature(apply).parameters
    # rope, rms_norm and swiglu/geglu keep liger's defaults (on) for every family.
    apply(**{k: v for k, v in wanted.items() if k in accepted})
    if fused:
        _FUSED_LOSS.add(model)
    parts = "RMSNorm, RoPE, SwiGLU" + (", fused linear cross-entropy" if fused else "")
    return f"Liger kernels in the {family} model ({parts})"


def fuses_loss(model: torch.nn.Module) -> bool:
    """Whether the model's causal-LM loss is Liger's fused linear cross-entropy."""
    return model in _FUSED_LOSS


def fused_causal_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor, targets: int
) -> torch.Tensor:
    """Summed cross-entropy of the next token over the labelled positions divided by
    `targets`, as `engine.recipes.heads.head_loss` computes it from the logits: Liger
    sums when given `num_items_in_batch` and divides by it, shifting the labels as the
    engine does."""
    return model(**batch, labels=labels, num_items_in_batch=targets).loss
