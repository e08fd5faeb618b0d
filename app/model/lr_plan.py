"""The learning rate over a whole plan, stage after stage, for the LR preview. Steps are
counted by `engine.spec.plan_steps` (data size, batch, accumulation and epochs; the run
monitor and `stagelab run` count with it too), the rate by the same `lr_multiplier` the
engine's scheduler calls. Qt-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.spec.plan_steps import planned_steps
from engine.spec.schedule import lr_multiplier
from engine.spec.settings import Optimizer, Schedule
from engine.spec.stages import StageBase

MAX_POINTS_PER_STAGE = 2000  # long stages are sampled; every step is drawn below this


@dataclass
class StageCurve:
    """One stage's part of the plan's learning-rate curve."""

    name: str
    start: int  # global step of the stage's first optimizer step
    steps: int
    x: list[int] = field(default_factory=list)  # global steps
    lr: list[float] = field(default_factory=list)
    estimate: str = ""  # why the step count is a guess ('' when it is exact)


def plan_curve(stages: list[Any], plan_dir: Path) -> list[StageCurve]:
    """The learning-rate curve of every stage, placed one after another."""
    curves, start = [], 0
    for i, raw in enumerate(stages):
        stage = raw if isinstance(raw, dict) else {}
        curve = stage_curve(stage, plan_dir, start, name=str(stage.get("name") or f"stage {i}"))
        curves.append(curve)
        start += curve.steps
    return curves


def stage_curve(stage: dict[str, Any], plan_dir: Path, start: int, name: str) -> StageCurve:
    """One stage's curve; settings that are invalid fall back to their defaults."""
    if stage.get("kind") in ("ensemble", "merge"):
        return StageCurve(name=name, start=start, steps=0)  # evaluation only: no steps
    schedule = _valid(Schedule, stage.get("schedule"))
    peak = _valid(Optimizer, stage.get("optimizer")).lr
    steps, estimate = planned_steps(stage, plan_dir)
    every = max(1, -(-steps // MAX_POINTS_PER_STAGE))
    local = list(range(0, steps, every))
    if local[-1] != steps - 1:
        local.append(steps - 1)
    return StageCurve(
        name=name,
        start=start,
        steps=steps,
        x=[start + s for s in local],
        lr=[peak * lr_multiplier(schedule, s, steps) for s in local],
        estimate=estimate,
    )


def _valid(model: Any, raw: Any) -> Any:
    try:
        return model.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError:
        return model.model_validate({"name": "x"} if model is StageBase else {})
