"""Checks of an `ensemble` stage that need the whole plan: members that are classifiers
of the ensemble's label set, weights that fit the combiner, and the rows a learned
combiner needs (eval rows to fit on, test rows to report on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.labels import data_labels
from engine.spec.problems import Problem

# What an earlier stage's output is, as far as an ensemble member goes.
_CLASSIFIER_TASK = "sequence_classification"


def _task_of(stage: Any) -> str:
    if getattr(stage, "kind", None) == "ensemble":
        return "ensemble"
    if getattr(stage, "kind", None) == "merge":
        return _CLASSIFIER_TASK  # a merge's output is one plain classifier
    return getattr(stage, "task", None) or getattr(stage, "objective", None) or ""


def check_ensemble(stages: list[Any], i: int, stage: Any, plan_dir: Path | None) -> list[Problem]:
    """Problems of ensemble stage `i` (`stages` may hold None for invalid stages)."""
    p = f"stages[{i}]"
    problems = classifier_member_problems(stages, i, stage, plan_dir, "an ensemble combines")
    return problems + _weights_and_rows(stage, p)


def classifier_member_problems(
    stages: list[Any], i: int, stage: Any, plan_dir: Path | None, verb: str
) -> list[Problem]:
    """Members from earlier stages that are not sequence classifiers of the stage's label
    set (an ensemble's or a merge's); `verb` says what the stage does with them."""
    p = f"stages[{i}]"
    problems: list[Problem] = []
    names = [getattr(s, "name", None) for s in stages]
    labels = data_labels(stage, plan_dir)
    for k, member in enumerate(stage.members):
        if not member.from_stage or member.from_stage not in names[:i]:
            continue  # folders and hub ids are checked when the stage loads them
        source = stages[names.index(member.from_stage)]
        if source is not None and source.kind == "joint":
            # A joint stage's member: its task and its data's labels.
            source = next((m for m in source.members if m.name == member.member), None)
        if source is None:
            continue
        task = _task_of(source)
        if task != _CLASSIFIER_TASK:
            problems.append(
                Problem(
                    f"{p}.members[{k}]",
                    f"stage '{member.from_stage}' makes a {task.replace('_', ' ')} model; "
                    f"{verb} sequence classifiers",
                )
            )
            continue
        theirs = data_labels(source, plan_dir)
        if labels is not None and theirs is not None and theirs != labels:
            missing = sorted(labels - theirs)
            extra = sorted(theirs - labels)
            detail = "; ".join(
                part
                for part in (
                    f"it never saw {', '.join(missing)}" if missing else "",
                    f"it also predicts {', '.join(extra)}" if extra else "",
                )
                if part
            )
            problems.append(
                Problem(
                    f"{p}.members[{k}]",
                    f"stage '{member.from_stage}' has another label set than the {stage.kind} "
                    f"stage's data ({detail}); members must predict the same labels",
                )
            )
    return problems


def _weights_and_rows(stage: Any, p: str) -> list[Problem]:
    problems: list[Problem] = []
    if stage.weights is not None:
        if stage.combiner != "average":
            problems.append(
                Problem(
                    f"{p}.weights",
                    f"fixed weights belong to combiner average (this one is {stage.combiner}); "
                    "remove them, or use combiner: average",
                )
            )
        elif len(stage.weights) != len(stage.members):
            problems.append(
                Problem(
                    f"{p}.weights",
                    f"{len(stage.weights)} weight(s) for {len(stage.members)} members; give "
                    "one per member",
                )
            )
    data = stage.data
    if stage.combiner == "weighted":
        if not (data.eval_split or data.eval_ratio > 0):
            problems.append(
                Problem(
                    f"{p}.data.eval_ratio",
                    "learned weights are fitted on the eval rows; set eval_ratio or eval_split",
                )
            )
        if not (data.test_split or data.test_ratio > 0):
            problems.append(
                Problem(
                    f"{p}.data.test_ratio",
                    "learned weights must be scored on rows they were not fitted on; set "
                    "test_ratio or test_split",
                )
            )
    return problems
