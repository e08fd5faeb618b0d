"""Editing a plan's sweep section in the window (no Qt): a default sweep for the plan, a
suggested range for a setting, and the section with one more setting swept. The editor
pushes the result as one undoable plan edit; validation (engine.spec) checks it like the
rest of the plan."""

from __future__ import annotations

import copy
import math
from typing import Any

from app.model.plan_document import UNSET
from engine.spec.eval_metrics import raw_eval_metrics

SWEEPABLE_KINDS = ("float", "int", "bool", "choice")


def default_sweep(data: dict[str, Any]) -> dict[str, Any]:
    """A sweep toward the last stage's accuracy (or loss when it is not evaluated): 8 trials,
    TPE, an empty space."""
    stages = data.get("stages") or []
    last = stages[-1] if stages else {}
    metrics = raw_eval_metrics(last)  # listed, else the task's defaults (as validated)
    metric = "accuracy" if "accuracy" in metrics else "loss"
    return {
        "objective": {
            "stage": last.get("name", ""),
            "metric": metric,
            "goal": "max" if metric == "accuracy" else "min",
        },
        "budget": {"trials": 8},
        "sampler": "tpe",
        "space": {},
    }


def settings_path(data: dict[str, Any], stage_index: int, keys: tuple[str, ...]) -> str:
    """'stages.<stage name>.<keys>' of a stage's setting."""
    name = data["stages"][stage_index].get("name") or str(stage_index)
    return ".".join(("stages", str(name), *keys))


def _round(value: float) -> float:
    """Two significant digits, so a suggested range reads well."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.2g}")


def suggested_distribution(
    kind: str,
    value: Any,
    *,
    default: Any = None,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
) -> dict[str, Any]:
    """A starting range for a setting around its value: a float on a log scale from a third
    to three times it (within its limits), an int two either side, every option of a choice
    or a flag."""
    current = default if value is UNSET or value is None else value
    if kind == "bool":
        return {"choice": [False, True]}
    if kind == "choice":
        return {"choice": list(choices) or [current]}
    if kind == "int":
        base = int(current or 0)
        low = max(int(minimum) if minimum is not None else 0, base - 2)
        high = base + 2 if maximum is None else min(int(maximum), base + 2)
        return {"choice": list(range(low, high + 1))} if high - low <= 4 else {"int": [low, high]}
    base = float(current) if current not in (None, 0) else 0.1
    if base > 0:
        low, high = _round(base / 3), _round(base * 3)
        if maximum is not None:
            high = min(high, maximum)
        return {"log_uniform": [low, high]} if low < high else {"uniform": [low, base]}
    return {"uniform": [base - 1.0, base + 1.0]}


def sweep_with_setting(
    data: dict[str, Any], stage_index: int, keys: tuple[str, ...], distribution: dict[str, Any]
) -> dict[str, Any]:
    """The plan's sweep section (a default one if it has none) with this setting swept."""
    sweep = copy.deepcopy(data.get("sweep")) or default_sweep(data)
    sweep.setdefault("space", {})[settings_path(data, stage_index, keys)] = distribution
    return sweep
