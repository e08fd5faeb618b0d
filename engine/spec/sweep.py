"""The sweep section of a plan (`sweep:`), or a sweep file (`plan:` plus the same keys):
an objective, a budget, a sampler, an optional pruner and a space over plan settings.

    sweep:
      objective: {stage: sentiment, metric: accuracy, goal: max, target: 0.9}
      budget: {trials: 8, minutes: 6}
      sampler: tpe                    # grid | random | tpe
      space:
        stages.sentiment.optimizer.lr: {log_uniform: [1.0e-4, 3.0e-3]}
        stages.sentiment.freezing.layers: {choice: [0, 1, 2]}

Validation lists every problem with its path (`sweep.space.stages.x.optimizer.lr: ...`):
every path names a setting, every range is legal for its kind, and every value the space
can produce (each choice, both ends of a range) makes a valid plan.
"""

# No `from __future__ import annotations`: see engine/spec/settings.py.

import itertools
import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.spec.settings import Settings

DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int", "log_int")


class Objective(Settings):
    """What a trial is judged by: a metric of one stage's last evaluation."""

    stage: str = Field(..., description="The stage whose metric is the objective.")
    metric: str = Field(
        ..., description="Its evaluation metric, e.g. 'accuracy' or 'loss' (eval/ is implied)."
    )
    goal: Literal["max", "min"] = Field("max", description="Maximise or minimise it.")
    target: float | None = Field(
        None, description="Stop the sweep as soon as a trial reaches this value."
    )

    @property
    def key(self) -> str:
        """The recorded metric key ('eval/accuracy')."""
        return self.metric if "/" in self.metric else f"eval/{self.metric}"

    def reached(self, value: float | None) -> bool:
        """Whether a value meets the target."""
        if self.target is None or value is None or math.isnan(value):
            return False
        return value >= self.target if self.goal == "max" else value <= self.target

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether `a` is better than `b` (None and NaN are never better)."""
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return a > b if self.goal == "max" else a < b


class Budget(Settings):
    """How much the sweep may spend."""

    trials: int = Field(10, ge=1, le=10_000, description="Trials at most.")
    minutes: float | None = Field(
        None, gt=0, description="Wall-clock limit: no trial starts after it (running ones end)."
    )


class Pruner(Settings):
    """Stop a trial early when its evaluations are worse than earlier trials' at the same
    step (Optuna's median pruner); such a trial is recorded as 'pruned'."""

    kind: Literal["median", "none"] = Field("median", description="'median' or 'none'.")
    startup_trials: int = Field(2, ge=0, description="Trials that finish before any is pruned.")
    warmup_steps: int = Field(
        0, ge=0, description="Steps of a trial's objective stage before it may be pruned."
    )


class Sweep(Settings):
    """Trials of the plan with settings drawn from a space, toward an objective."""

    objective: Objective = Field(..., description="The metric to optimise.")
    budget: Budget = Field(default_factory=Budget, description="Trials and time.")
    sampler: Literal["grid", "random", "tpe"] = Field(
        "tpe", description="grid: every combination; random; tpe: Optuna's TPE."
    )
    seed: int = Field(0, ge=0, description="Seed of the sampler.")
    pruner: Pruner = Field(default_factory=Pruner, description="Early stopping of bad trials.")
    space: dict[str, dict[str, Any]] = Field(
        ...,
        min_length=1,
        description="Settings by path, each with one of: choice: [..], uniform: [lo, hi], "
        "log_uniform: [lo, hi], int: [lo, hi] (optional step), log_int: [lo, hi].",
    )

    @field_validator("space")
    @classmethod
    def _legal_ranges(cls, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        problems = [f"{path}: {msg}" for path, msg in space_shape_problems(space)]
        if problems:
            raise ValueError("; ".join(problems))
        return space

    @model_validator(mode="after")
    def _grid_needs_countable_space(self) -> "Sweep":
        if self.sampler == "grid":
            loose = [p for p, d in self.space.items() if _kind(d) in ("uniform", "log_uniform")]
            if loose:
                raise ValueError(
                    f"sampler grid needs choice or int ranges; {', '.join(loose)} is "
                    "continuous (use random or tpe, or list the values with choice)"
                )
        return self


def _kind(dist: dict[str, Any]) -> str:
    return next((k for k in dist if k in DISTRIBUTIONS), "")


def space_shape_problems(space: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) for every distribution that is not legal by itself."""
    problems: list[tuple[str, str]] = []
    for path, dist in space.items():
        if not isinstance(dist, dict):
            problems.append((path, f"give one of {', '.join(DISTRIBUTIONS)} (got {dist!r})"))
            continue
        kinds = [k for k in dist if k in DISTRIBUTIONS]
        extra = [k for k in dist if k not in (*DISTRIBUTIONS, "step")]
        if len(kinds) != 1 or extra:
            problems.append(
                (path, f"give exactly one of {', '.join(DISTRIBUTIONS)} (got {', '.join(dist)})")
            )
            continue
        kind, value = kinds[0], dist[kinds[0]]
        if kind == "choice":
            if not isinstance(value, list) or not value:
                problems.append((path, "choice needs a non-empty list of values"))
            elif len({repr(v) for v in value}) != len(value):
                problems.append((path, "choice lists a value twice"))
            continue
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            problems.append((path, f"{kind} needs [low, high] numbers (got {value!r})"))
            continue
        low, high = value
        if not low < high:
            problems.append((path, f"{kind}: low must be below high (got [{low}, {high}])"))
        if kind.startswith("log") and low <= 0:
            problems.append((path, f"{kind}: low must be > 0 for a log scale (got {low})"))
        if kind in ("int", "log_int") and not all(float(v).is_integer() for v in value):
            problems.append((path, f"{kind}: low and high must be whole numbers"))
        step = dist.get("step")
        if step is not None and (kind != "int" or not isinstance(step, int) or step < 1):
            problems.append((path, "step applies to int ranges and must be a whole number ≥ 1"))
    return problems


def space_values(dist: dict[str, Any]) -> list[Any]:
    """Every value of a countable distribution (choice, int), or the two ends of a range."""
    kind = _kind(dist)
    value = dist[kind]
    if kind == "choice":
        return list(value)
    low, high = value
    if kind in ("int", "log_int"):
        step = dist.get("step") or 1
        return list(range(int(low), int(high) + 1, step))
    return [low, high]


def grid(space: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination of a countable space, in a fixed order."""
    paths = list(space)
    return [
        dict(zip(paths, combo, strict=True))
        for combo in itertools.product(*(space_values(space[p]) for p in paths))
    ]
