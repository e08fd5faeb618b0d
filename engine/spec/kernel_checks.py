"""Checks of `kernels: liger` (issue 32, item 3): Liger's fused Triton kernels exist for
some decoder families and run on CUDA only. What the plan alone can tell is checked with
the plan (the family); where the run trains is checked when it is known: `stagelab
validate` and `run` on the CPU, and the engine once it has its device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.model_config import root_source, source_config
from engine.spec.problems import Problem

# The model types whose `apply_liger_kernel_to_<type>` liger-kernel 0.8 exports for a
# text decoder (RMSNorm, RoPE, SwiGLU/GeGLU, fused linear cross-entropy).
LIGER_FAMILIES = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "qwen3_moe",
    "gemma",
    "gemma2",
    "gemma3_text",
    "phi3",
    "granite",
    "olmo2",
    "olmo3",
    "glm4",
    "smollm3",
)
# Stage kinds that train one model the kernels can be put into.
ONE_MODEL_KINDS = ("pretrain", "train", "grow", "distill", "preference")
NEEDS_CUDA = (
    "kernels: liger runs Liger's Triton kernels on a CUDA GPU; train on a GPU "
    "(--gpus 0) or set kernels: none"
)
NOT_INSTALLED = (
    "kernels: liger needs the liger-kernel package; install it with "
    "pip install 'stagelab[gpu]' or set kernels: none"
)


def family_refusal(model_type: str) -> str | None:
    """Why Liger's kernels cannot go into a model of this type, or None if they can."""
    if model_type in LIGER_FAMILIES:
        return None
    return (
        f"Liger has no kernels for {model_type} models (only {', '.join(LIGER_FAMILIES)}); "
        "set kernels: none"
    )


def model_family(stages: list[Any], stage: Any, plan_dir: Path | None) -> str | None:
    """The model type of a stage's model (a built-in's architecture, a folder's or cached
    Hub model's config.json), followed through `from_stage`; None where unknown."""
    source = getattr(stage, "model", None)
    root = root_source(stages, source) if source is not None else None
    if root is None:
        return None
    if root.builtin:
        return root.builtin.partition("-")[0]
    model_type = (source_config(root, plan_dir) or {}).get("model_type")
    return model_type if isinstance(model_type, str) else None


def check_kernels(
    stages: list[Any], i: int, stage: Any, plan_dir: Path | None = None
) -> list[Problem]:
    """A stage asking for Liger's kernels on a model they do not cover."""
    if getattr(stage, "kernels", "none") != "liger":
        return []
    where = f"stages[{i}].kernels"
    if stage.kind not in ONE_MODEL_KINDS:
        return [
            Problem(
                where,
                f"kernels: liger goes into the one model of a {', '.join(ONE_MODEL_KINDS)} "
                f"stage, not a {stage.kind} stage; set kernels: none",
            )
        ]
    family = model_family(stages, stage, plan_dir)
    refusal = family_refusal(family) if family else None
    return [Problem(where, refusal)] if refusal else []


def device_problems(plan: Any, device_type: str) -> list[Problem]:
    """Stages asking for Liger's kernels on a device other than CUDA ('cpu', 'mps')."""
    if device_type == "cuda":
        return []
    return [
        Problem(f"stages[{i}].kernels", NEEDS_CUDA)
        for i, stage in enumerate(plan.stages)
        if getattr(stage, "kernels", "none") == "liger"
    ]
