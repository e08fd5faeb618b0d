"""Checks of `packing: true` (issue 32, item 2): which stages can pack their rows, and
which model families keep packed rows apart (engine.train.packing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.lineage import objective_of
from engine.spec.model_config import root_source, source_config
from engine.spec.problems import Problem

# Objectives whose rows pack: language modelling, instruction tuning and preference pairs
# on one model.
PACKING_OBJECTIVES = ("causal_lm", "causal_lm_sft", "masked_lm", "preference")
PACKING_KINDS = ("pretrain", "train", "grow", "preference")
# Model types that take a block-diagonal 4-D attention mask as given (SDPA and eager) and
# restart positions from `position_ids` (checked against transformers by
# tests/engine/train/test_packing.py).
PACKABLE = ("bert", "gpt2", "llama", "qwen2", "mistral", "gpt_neox")


def stage_family(stages: list[Any], stage: Any, plan_dir: Path | None) -> str | None:
    """The model type of a stage's model, followed through `from_stage`: a built-in's
    architecture, a folder's or cached Hub model's config.json; None where unknown."""
    source = getattr(stage, "model", None)
    root = root_source(stages, source) if source is not None else None
    if root is None:
        return None
    if root.builtin:
        return root.builtin.partition("-")[0]
    config = source_config(root, plan_dir)
    model_type = config.get("model_type") if config else None
    return model_type if isinstance(model_type, str) else None


def check_packing(
    stages: list[Any], i: int, stage: Any, plan_dir: Path | None = None
) -> list[Problem]:
    """One sentence for a stage that asks for packing where rows cannot be packed."""
    if not getattr(stage, "packing", False):
        return []
    where = f"stages[{i}].packing"
    objective = objective_of(stage)
    if stage.kind not in PACKING_KINDS or objective not in PACKING_OBJECTIVES:
        what = f"{stage.kind} stages" if stage.kind not in PACKING_KINDS else objective
        return [
            Problem(
                where,
                "packing is for causal-LM, instruction tuning (causal_lm_sft), masked-LM and "
                f"preference stages, not {what.replace('_', ' ')}; remove packing",
            )
        ]
    family = stage_family(stages, stage, plan_dir)
    if family is not None and family not in PACKABLE:
        return [
            Problem(
                where,
                f"packed rows of a {family} model cannot be kept apart (packing works for "
                f"{', '.join(PACKABLE)}); remove packing",
            )
        ]
    return []
