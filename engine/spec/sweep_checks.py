"""Checks of a plan's sweep section against the plan itself: the objective's stage and
metric exist, every space path names a setting, and every value the space can produce
makes a valid plan. Each problem has its path, as `stagelab validate` lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.paths import PathError, resolve, with_settings
from engine.spec.problems import Problem


def _checked_values(dist: dict[str, Any]) -> list[Any]:
    """Each choice, or the two ends of a range."""
    for kind in ("choice", "uniform", "log_uniform", "int", "log_int"):
        if kind in dist:
            return list(dist[kind]) if kind == "choice" else list(dist[kind][:2])
    return []


def sweep_problems(data: dict[str, Any], plan: Any, plan_dir: Path | None) -> list[Problem]:
    """Every problem of `plan.sweep` given the plan (data: the plan's plain data)."""
    from engine.spec.plan import plan_problems

    sweep = plan.sweep
    problems: list[Problem] = []
    names = [s.name for s in plan.stages]
    objective = sweep.objective
    if objective.stage not in names:
        problems.append(
            Problem(
                "sweep.objective.stage",
                f"no stage '{objective.stage}' (stages: {', '.join(names)})",
            )
        )
    else:
        stage = plan.stages[names.index(objective.stage)]
        metric = objective.key.split("/", 1)[1] if objective.key.startswith("eval/") else None
        if metric is not None and metric not in stage.eval.metrics:
            problems.append(
                Problem(
                    "sweep.objective.metric",
                    f"stage '{stage.name}' does not evaluate '{metric}'; add it to "
                    f"stages.{stage.name}.eval.metrics",
                )
            )
    base = {k: v for k, v in data.items() if k != "sweep"}
    for path, dist in sweep.space.items():
        where = f"sweep.space.{path}"
        try:
            resolve(base, path)
        except PathError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        for value in _checked_values(dist):
            for problem in plan_problems(with_settings(base, {path: value}), plan_dir):
                problems.append(Problem(where, f"the value {value!r} makes: {problem}"))
    return problems
