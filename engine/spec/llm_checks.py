"""Checks of the settings for language-model fine-tuning that need the whole plan:
adapters (`adapter:`), which stages can read an adapter output, and chat data."""

from __future__ import annotations

import importlib.util
from typing import Any

from engine.spec.adapter import QLORA_NEEDS
from engine.spec.problems import Problem

# Stage kinds that can start from an adapter output (engine.recipes.common.start_outputs):
# they continue its adapters or start from its merged weights.
READS_ADAPTER_OUTPUTS = ("pretrain", "train", "grow", "preference")


def _adapter_output_stage(stages: list[Any], name: str | None, before: int) -> Any:
    """The earlier stage called `name` if its output holds adapters only."""
    for stage in stages[:before]:
        if stage is not None and stage.name == name:
            adapter = getattr(stage, "adapter", None)
            return stage if adapter is not None and adapter.output == "adapter" else None
    return None


def check_llm_settings(stages: list[Any], i: int, stage: Any) -> list[Problem]:
    """Problems of stage `i`'s adapter and chat settings against the stages before it."""
    p = f"stages[{i}]"
    problems = []
    adapter = getattr(stage, "adapter", None)
    model = getattr(stage, "model", None)
    upstream = _adapter_output_stage(stages, getattr(model, "from_stage", None), i)
    if adapter is not None:
        if adapter.kind == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
            problems.append(
                Problem(f"{p}.adapter.kind", f"{QLORA_NEEDS} (bitsandbytes is not installed)")
            )
        if adapter.continue_adapter and stage.kind == "grow":
            problems.append(
                Problem(
                    f"{p}.adapter.continue_adapter",
                    "a grow stage adds layers the earlier adapters do not cover; start new "
                    "adapters (continue_adapter: false) or continue them in a train stage",
                )
            )
        elif adapter.continue_adapter and upstream is None:
            problems.append(
                Problem(
                    f"{p}.adapter.continue_adapter",
                    "continuing adapters needs model.from_stage naming an earlier stage whose "
                    "adapter.output is adapter; set that, or continue_adapter: false",
                )
            )
    for field in ("model", "teacher"):
        source = getattr(stage, field, None)
        reader = stage.kind in READS_ADAPTER_OUTPUTS and field == "model"
        earlier = _adapter_output_stage(stages, getattr(source, "from_stage", None), i)
        if earlier is not None and not reader:
            problems.append(
                Problem(
                    f"{p}.{field}.from_stage",
                    f"stage '{earlier.name}' writes its adapters alone (adapter.output: "
                    f"adapter), which a {stage.kind} stage cannot start from; set its "
                    "adapter.output to merged",
                )
            )
    data = getattr(stage, "data", None)
    objective = getattr(stage, "objective", None) or getattr(stage, "task", None)
    if getattr(data, "messages_column", None) and objective != "causal_lm_sft":
        problems.append(
            Problem(
                f"{p}.data.messages_column",
                f"chat messages are for causal_lm_sft (this stage trains "
                f"{str(objective).replace('_', ' ')}); use text_column, or task causal_lm_sft",
            )
        )
    return problems
