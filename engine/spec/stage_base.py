"""What every stage kind shares: its name rule and `StageBase`, the settings of how a
stage is trained (engine.spec.stages holds the kinds; merge_stage imports this without
importing them)."""

# No `from __future__ import annotations`: see engine/spec/settings.py.

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from engine.spec.eval_metrics import default_eval_metrics
from engine.spec.settings import (
    Augmentation,
    Batching,
    Checkpointing,
    Evaluation,
    Freezing,
    Optimizer,
    Regularization,
    Schedule,
    Settings,
)

STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def simple_name(value: str) -> str:
    """A stage's or a joint member's name: it names folders and metric keys."""
    if not STAGE_NAME.match(value):
        raise ValueError(
            "must start with a letter or digit and use only letters, digits, '_', '-' "
            f"or '.' (at most 64 characters) (got '{value}')"
        )
    return value


class StageBase(Settings):
    """Settings every stage has: its name and how it is trained."""

    name: str = Field(..., description="Unique name of the stage; later stages refer to it.")
    description: str = Field("", description="Free text shown on the stage card.")
    cache: bool = Field(
        True,
        description="Reuse a finished stage with the same fingerprint (settings, data, "
        "upstream stages, seed) instead of training again; false: always train.",
    )
    epochs: float | None = Field(1.0, gt=0, le=10_000, description="Passes over the data.")
    max_steps: int | None = Field(
        None, ge=1, description="Optimizer steps; when given it overrides epochs."
    )
    batch_size: int = Field(16, ge=1, le=65_536, description="Examples per forward pass.")
    grad_accum: int = Field(
        1, ge=1, le=4096, description="Forward passes accumulated per optimizer step."
    )
    max_grad_norm: float | None = Field(
        1.0, gt=0, description="Clip the gradient norm to this value (none: no clipping)."
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="bf16/fp16 autocast on CUDA; fp32 elsewhere."
    )
    tf32: bool = Field(
        True,
        description="TF32 tensor cores for fp32 matrix products on Ampere and newer GPUs "
        "(about 10 mantissa bits; no effect on CPU or with bf16/fp16 autocast's own products).",
    )
    compile: bool = Field(
        False,
        description="torch.compile the stage's models: faster steps once the first step has "
        "compiled them; one graph serves every padded length, evaluation runs them eager.",
    )
    kernels: Literal["none", "liger"] = Field(
        "none",
        description="Fused kernels on a CUDA GPU. 'liger': Liger's fused linear "
        "cross-entropy (causal LM), RMSNorm, RoPE and SwiGLU for decoder families (llama, "
        "mistral, qwen2, gemma, phi3 ...); needs pip install 'stagelab[gpu]'. 'none': the "
        "model's own layers.",
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed of every random generator.")
    log_every_steps: int = Field(
        10, ge=1, description="Read the training loss from the device every N steps."
    )
    optimizer: Optimizer = Field(default_factory=Optimizer, description="Optimizer.")
    schedule: Schedule = Field(default_factory=Schedule, description="Learning-rate schedule.")
    regularization: Regularization = Field(
        default_factory=Regularization, description="L1, dropout and early stopping."
    )
    augmentation: Augmentation = Field(
        default_factory=Augmentation, description="Random token noise on training inputs."
    )
    freezing: Freezing = Field(default_factory=Freezing, description="Freezing and unfreezing.")
    eval: Evaluation = Field(default_factory=Evaluation, description="Evaluation.")
    checkpoint: Checkpointing = Field(default_factory=Checkpointing, description="Checkpoints.")
    batching: Batching = Field(
        default_factory=Batching, description="Building, padding and grouping of batches."
    )
    packing: bool = Field(
        False,
        description="Pack the training rows into sequences of max_length tokens, attention "
        "kept within each row (no padding: fewer, fuller batches; batch_size counts packed "
        "sequences; a preference pair's two responses share a sequence of 2 × max_length). "
        "causal_lm, causal_lm_sft, masked_lm and preference stages on bert, gpt2, llama, "
        "qwen2, mistral and gpt_neox models.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        return simple_name(value)

    @model_validator(mode="after")
    def _task_metrics(self) -> "StageBase":
        """`eval.metrics` left out: the task's defaults (engine.spec.eval_metrics), kept out
        of the fields set so that the plan is saved as written."""
        evaluation = self.eval
        if "metrics" in evaluation.model_fields_set and evaluation.metrics is not None:
            return self
        tasks = [m.task for m in getattr(self, "members", None) or [] if hasattr(m, "task")]
        objective = getattr(self, "objective", None) or getattr(self, "task", None)
        filled = evaluation.model_copy()  # never change an Evaluation another stage holds
        filled.__dict__["metrics"] = default_eval_metrics(
            getattr(self, "kind", ""), objective, tasks
        )
        filled.model_fields_set.discard("metrics")
        # Not `self.eval = ...`: assignment would validate the stage again.
        self.__dict__["eval"] = filled
        return self
