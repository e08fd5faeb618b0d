"""Checks of a `joint` stage (members, coupling, per-member metrics and early stopping),
and of model sources that name a joint stage's member (`from_stage` + `member`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.labels import data_labels
from engine.spec.problems import Problem
from engine.spec.relevance import allowed_metrics
from engine.spec.tokenizer_checks import check_mutual_vocabulary


def member_metrics(stage: Any, member: Any) -> list[str]:
    """The metrics a member is evaluated with: its own, else the stage's that apply to its
    task (the engine and the checks use this one rule)."""
    if member.metrics is not None:
        return list(member.metrics)
    allowed = allowed_metrics(member.task)
    return [m for m in stage.eval.metrics if m in allowed] or ["loss"]


def check_member_reference(
    stages: list[Any], names: list[Any], source: Any, path: str
) -> list[Problem]:
    """A model source naming a joint stage must say which member; `member` only goes with
    a joint stage and one of its members."""
    if not source.from_stage or source.from_stage not in names:
        return []
    named = stages[names.index(source.from_stage)]
    if named is None:
        return []
    if named.kind != "joint":
        if source.member is not None:
            return [
                Problem(
                    f"{path}.member",
                    f"stage '{source.from_stage}' is a {named.kind} stage with one model; "
                    "member names a joint stage's member, remove it",
                )
            ]
        return []
    members = [m.name for m in named.members]
    if source.member is None:
        return [
            Problem(
                f"{path}.member",
                f"stage '{source.from_stage}' trains {len(members)} models; name one with "
                f"member: {', '.join(members)}",
            )
        ]
    if source.member not in members:
        return [
            Problem(
                f"{path}.member",
                f"stage '{source.from_stage}' has no member '{source.member}' (its members: "
                f"{', '.join(members)})",
            )
        ]
    return []


def check_joint(stages: list[Any], i: int, stage: Any, plan_dir: Path | None) -> list[Problem]:
    """Problems of joint stage `i` (`stages` may hold None for invalid stages)."""
    p = f"stages[{i}]"
    problems: list[Problem] = []
    shared = stage.coupling == "shared_backbone"
    if shared and stage.model is None:
        problems.append(
            Problem(
                f"{p}.model", "shared_backbone needs model: the encoder every member's head sits on"
            )
        )
    if not shared and stage.model is not None:
        problems.append(
            Problem(
                f"{p}.model",
                "with mutual coupling every member has its own model; move it into the "
                "members, or use coupling: shared_backbone",
            )
        )
    seen: dict[str, int] = {}
    for k, member in enumerate(stage.members):
        q = f"{p}.members[{k}]"
        if member.name in seen:
            problems.append(
                Problem(
                    f"{q}.name",
                    f"'{member.name}' is already the name of members[{seen[member.name]}]; "
                    "member names must be unique",
                )
            )
        seen.setdefault(member.name, k)
        if shared and member.model is not None:
            problems.append(
                Problem(
                    f"{q}.model",
                    "with shared_backbone the members share the stage's model; remove this "
                    "one, or use coupling: mutual",
                )
            )
        if not shared and member.model is None:
            problems.append(Problem(f"{q}.model", "mutual coupling: give this member a model"))
        allowed = allowed_metrics(member.task)
        wrong = [m for m in member.metrics or [] if m not in allowed]
        if wrong:
            problems.append(
                Problem(
                    f"{q}.metrics",
                    f"{', '.join(wrong)} do not apply to {member.task.replace('_', ' ')}; "
                    f"choose from {', '.join(sorted(allowed))}",
                )
            )
        data = member.data
        needs_eval = stage.eval.every_steps or stage.regularization.early_stopping
        if needs_eval and data.eval_split is None and data.eval_ratio == 0:
            problems.append(
                Problem(
                    f"{q}.data.eval_ratio",
                    "evaluation needs data: set eval_ratio above 0 or name an eval_split",
                )
            )
    if not shared:
        problems += _check_mutual(stage, p, plan_dir)
        problems += check_mutual_vocabulary(stages, i, stage, plan_dir)
    problems += _check_stopping(stage, p)
    return problems


def _check_mutual(stage: Any, p: str, plan_dir: Path | None) -> list[Problem]:
    """Mutual learning compares the members' outputs on the same rows: one task, one
    label set."""
    tasks = {m.task for m in stage.members}
    if len(tasks) > 1:
        return [
            Problem(
                f"{p}.members",
                "mutual members learn from each other's outputs, so they need one task (got "
                f"{', '.join(sorted(t.replace('_', ' ') for t in tasks))}); use "
                "shared_backbone for different tasks",
            )
        ]
    if tasks == {"sequence_regression"}:
        return []
    first = data_labels(stage.members[0], plan_dir)
    for k, member in enumerate(stage.members[1:], start=1):
        theirs = data_labels(member, plan_dir)
        if first is not None and theirs is not None and theirs != first:
            return [
                Problem(
                    f"{p}.members[{k}].data",
                    f"member '{member.name}' has other labels than '{stage.members[0].name}' "
                    f"({', '.join(sorted(theirs ^ first))} differ); mutual members predict "
                    "one label set",
                )
            ]
    return []


def _check_stopping(stage: Any, p: str) -> list[Problem]:
    """Early stopping of a joint stage watches the weighted total loss or one member's
    metric, written `<metric>/<member>`."""
    stopping = stage.regularization.early_stopping
    if stopping is None or stopping.metric == "loss":
        return []
    metric, _, name = stopping.metric.partition("/")
    members = {m.name: m for m in stage.members}
    if name not in members:
        return [
            Problem(
                f"{p}.regularization.early_stopping.metric",
                f"watch 'loss' (the weighted total) or '<metric>/<member>' with a member of "
                f"{', '.join(members)} (got '{stopping.metric}')",
            )
        ]
    if metric not in member_metrics(stage, members[name]) or metric == "confusion_matrix":
        return [
            Problem(
                f"{p}.regularization.early_stopping.metric",
                f"'{metric}' is not evaluated for member '{name}'; add it to its metrics",
            )
        ]
    return []
