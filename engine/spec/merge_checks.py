"""Checks of a `merge` stage that need the whole plan: members that are classifiers of
the stage's label set and fine-tunes of one model (one architecture, one size), a base
for the task-vector methods, and weights that fit the method. Shapes the plan cannot tell
(folders, Hub ids) are compared when the stage loads them (engine.train.merging)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.ensemble_checks import classifier_member_problems
from engine.spec.lineage import root_layers
from engine.spec.merge_stage import TASK_VECTOR_METHODS
from engine.spec.model_config import root_source
from engine.spec.problems import Problem


def _origin(stages: list[Any], source: Any) -> str | None:
    """What a member descends from, in words ('bert-tiny, 2 layers'); None if unknown."""
    root = root_source(stages, source)
    if root is None:
        return None
    what = root.builtin or root.hub or (str(Path(root.path)) if root.path else None)
    names = [getattr(s, "name", None) for s in stages]
    layers = None
    if source.from_stage in names and stages[names.index(source.from_stage)] is not None:
        layers = root_layers(stages, names.index(source.from_stage))
    return f"{what}, {layers} layers" if what and layers else what


def check_merge(stages: list[Any], i: int, stage: Any, plan_dir: Path | None) -> list[Problem]:
    """Problems of merge stage `i` (`stages` may hold None for invalid stages)."""
    p = f"stages[{i}]"
    problems = classifier_member_problems(stages, i, stage, plan_dir, "a merge stage merges")
    origins = {}
    for k, member in enumerate(stage.members):
        origin = _origin(stages, member) if member.from_stage else None
        if origin is not None:
            origins.setdefault(origin, k)
    if len(origins) > 1:
        seen = "; ".join(f"members[{k}] from {o}" for o, k in origins.items())
        problems.append(
            Problem(
                f"{p}.members",
                f"the members start from different models ({seen}); merging averages "
                "weights, so merge fine-tunes of one model (one architecture and size)",
            )
        )
    method = stage.method
    if method in TASK_VECTOR_METHODS and stage.base is None:
        problems.append(
            Problem(
                f"{p}.base",
                f"{method} merges the members' changes to the model they were fine-tuned "
                "from; name it as base (e.g. base: {from_stage: <pretrain stage>})",
            )
        )
    if method not in TASK_VECTOR_METHODS and stage.base is not None:
        problems.append(
            Problem(
                f"{p}.base",
                f"method {method} reads no base; remove it, or use task_arithmetic or ties",
            )
        )
    if method == "weighted" and stage.weights is None:
        problems.append(Problem(f"{p}.weights", "method weighted needs weights, one per member"))
    elif stage.weights is not None and method != "weighted":
        problems.append(
            Problem(
                f"{p}.weights",
                f"weights belong to method weighted (this one is {method}); remove them, "
                "or use method: weighted",
            )
        )
    elif stage.weights is not None and len(stage.weights) != len(stage.members):
        problems.append(
            Problem(
                f"{p}.weights",
                f"{len(stage.weights)} weight(s) for {len(stage.members)} members; give "
                "one per member",
            )
        )
    data = stage.data
    if method == "greedy_soup" and not (data.eval_split or data.eval_ratio > 0):
        problems.append(
            Problem(
                f"{p}.data.eval_ratio",
                "greedy soup chooses its members by their score on the eval rows; set "
                "eval_ratio or eval_split",
            )
        )
    return problems
