"""The `adapter:` setting of a stage: parameter-efficient training with LoRA or QLoRA
(through peft), and what the stage writes as its output (docs/engine.md, "Adapters")."""

# No `from __future__ import annotations`: see engine/spec/settings.py.

from typing import Annotated, Literal

from pydantic import Field, field_validator

from engine.spec.settings import Settings

# Modules LoRA wraps when `target_modules` is not given, by the model's `model_type`: the
# attention's query and value projections (fused into one matrix in GPT-2 and GPT-NeoX).
DEFAULT_TARGET_MODULES: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "gpt_neox": ["query_key_value"],
}

QLORA_NEEDS = "QLoRA needs a CUDA GPU and the bitsandbytes package; use kind: lora on CPU"


class Adapter(Settings):
    """Train small low-rank adapters instead of the model's weights, which stay fixed."""

    kind: Literal["lora", "qlora"] = Field(
        "lora",
        description="lora: low-rank adapters on the frozen weights; qlora: the same on "
        "4-bit base weights (CUDA GPU and bitsandbytes only).",
    )
    rank: int = Field(8, ge=1, le=1024, description="Rank r of each adapter's matrices.")
    alpha: float = Field(
        16, gt=0, le=4096, description="Scale of the adapters' update: alpha / rank."
    )
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: list[str] | None = Field(
        None,
        description="Names of the linear modules that get adapters; auto (or left out): the "
        "attention's query and value projections found in the model, e.g. ("
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in DEFAULT_TARGET_MODULES.items())
        + "; DistilBERT's q_lin, v_lin; ModernBERT's fused Wqkv …).",
    )
    output: Literal["merged", "adapter"] = Field(
        "merged",
        description="merged: the stage output is a plain model with the adapters merged "
        "in; adapter: the output holds the adapters alone (peft format) and names its base.",
    )
    # `continue` itself is a Python keyword: an alias would have to be taught to the plan
    # writer, the inspector and the reference generator, which all go by field names.
    continue_adapter: bool = Field(
        False,
        description="Keep training the adapters of the stage this one starts from (its "
        "output must be adapter); false: new adapters on its merged weights.",
    )

    @field_validator("target_modules", mode="before")
    @classmethod
    def _auto(cls, value: object) -> object:
        # `auto` is what leaving the setting out does: the same stage, the same fingerprint.
        return None if isinstance(value, str) and value.strip().lower() == "auto" else value

    @field_validator("target_modules")
    @classmethod
    def _some_modules(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not [v for v in value if v.strip()]:
            raise ValueError("name at least one module, or leave target_modules out")
        return value


# LoRA adapters or full training, for the stage kinds that train one model's weights.
AdapterChoice = Annotated[
    Adapter | None,
    Field(description="Train LoRA adapters instead of the model's weights (none: full)."),
]
