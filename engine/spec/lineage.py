"""Where a stage's model comes from, followed through the plan: its objective, the
built-in family it descends from, and how many layers it has (read by the checks)."""

from __future__ import annotations

from engine.spec.builtins import SIZES
from engine.spec.settings import ModelSource
from engine.spec.stages import StageBase


def objective_of(stage: StageBase) -> str:
    """'masked_lm', 'causal_lm', or the supervised task of the stage."""
    if stage.kind == "preference":
        return "preference"
    if stage.kind in ("ensemble", "merge"):
        return "sequence_classification"
    if stage.kind == "joint":
        return "joint"
    return getattr(stage, "objective", None) or getattr(stage, "task", "") or ""


def root_architecture(stages: list[StageBase | None], index: int) -> str | None:
    """Architecture family ('bert', 'gpt2') a stage's model descends from, if built-in."""
    seen = set()
    stage = stages[index]
    while stage is not None and index not in seen:
        seen.add(index)
        model: ModelSource | None = getattr(stage, "model", None)
        if model is None:
            return None
        if model.builtin:
            return model.builtin.partition("-")[0]
        if not model.from_stage:
            return None
        names = [s.name if s else None for s in stages]
        if model.from_stage not in names:
            return None
        index = names.index(model.from_stage)
        stage = stages[index]
    return None


def root_layers(stages: list[StageBase | None], index: int) -> int | None:
    """Number of layers of a built-in model a stage descends from, if known."""
    stage = stages[index]
    names = [s.name if s else None for s in stages]
    hops = 0
    while stage is not None and hops <= len(stages):
        hops += 1
        # A grow stage's output has its target depth; a distilled student may be cut short.
        if stage.kind == "grow":
            return stage.target_layers
        if stage.kind == "distill" and stage.student_layers:
            return stage.student_layers
        model = getattr(stage, "model", None)
        if model is None:
            return None
        if model.builtin:
            return SIZES[model.builtin.partition("-")[2]].layers
        if not model.from_stage or model.from_stage not in names:
            return None
        stage = stages[names.index(model.from_stage)]
    return None
