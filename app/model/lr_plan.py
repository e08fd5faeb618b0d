"""The learning rate over a whole plan, stage after stage, for the LR preview. Steps come
from the data size, batch, accumulation and epochs, and the rate from the same
`lr_multiplier` the engine's scheduler calls. Qt-free."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.model.data_files import split_files
from engine.spec.rows import count_kept, needed_columns, stage_objective
from engine.spec.schedule import joint_steps, lr_multiplier, stage_steps, train_rows
from engine.spec.settings import DataSource, Optimizer, Schedule
from engine.spec.stages import StageBase

MAX_POINTS_PER_STAGE = 2000  # long stages are sampled; every step is drawn below this
UNKNOWN_SIZE_STEPS = 100  # drawn for a stage whose data size cannot be known here


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
    if stage.get("kind") == "ensemble":
        return StageCurve(name=name, start=start, steps=0)  # evaluation only: no steps
    schedule = _valid(Schedule, stage.get("schedule"))
    peak = _valid(Optimizer, stage.get("optimizer")).lr
    steps, estimate = _steps(stage, plan_dir)
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


def _steps(stage: dict[str, Any], plan_dir: Path) -> tuple[int, str]:
    keys = ("epochs", "max_steps", "batch_size", "grad_accum")
    loop = _valid(StageBase, {"name": "x", **{k: stage[k] for k in keys if k in stage}})
    if loop.max_steps:
        return loop.max_steps, ""
    if stage.get("kind") == "joint":
        return _joint_steps(stage, plan_dir)
    rows, estimate = _train_rows(stage.get("data"), plan_dir, stage_objective(stage))
    if rows is None:
        return UNKNOWN_SIZE_STEPS, estimate
    return stage_steps(loop, rows), estimate


def _joint_steps(stage: dict[str, Any], plan_dir: Path) -> tuple[int, str]:
    """Steps of a joint stage from its members' rows (the engine's `joint_steps`)."""
    members = stage.get("members")
    counted = []
    for member in members if isinstance(members, list) else []:
        member = member if isinstance(member, dict) else {}
        task = member.get("task") if isinstance(member.get("task"), str) else None
        rows, estimate = _train_rows(
            member.get("data"), plan_dir, task or "sequence_classification"
        )
        if rows is None:
            return UNKNOWN_SIZE_STEPS, estimate
        counted.append(rows)
    keys = ("epochs", "max_steps", "batch_size", "grad_accum")
    loop = _valid(StageBase, {"name": "x", **{k: stage[k] for k in keys if k in stage}})
    return joint_steps(loop, counted, str(stage.get("sampling", "all"))), ""


def _train_rows(raw: Any, plan_dir: Path, objective: str) -> tuple[int | None, str]:
    try:
        data = DataSource.model_validate(raw)
    except ValidationError:
        return None, "data not set"
    if data.hub:
        return None, "Hub data: size known when the run starts"
    path = Path(data.path).expanduser()
    path = path if path.is_absolute() else plan_dir / path
    try:
        file = split_files(path).get(data.train_split)
        if file is None:
            return None, f"no split '{data.train_split}'"
        kept = _kept_rows(file, data.format, tuple(needed_columns(data, objective)))
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        return None, f"{path.name}: cannot be read ({exc})"
    # The engine drops the rows `keep_row` drops before it holds rows out and applies the
    # limit; counting with the same function gives the same steps.
    return train_rows(data, kept), ""


_kept_cache: dict[tuple[str, str, tuple[str, ...], float, int], int] = {}


def _kept_rows(file: Path, fmt: str, columns: tuple[str, ...]) -> int:
    stat = file.stat()
    key = (str(file), fmt, columns, stat.st_mtime, stat.st_size)
    if key not in _kept_cache:
        _kept_cache[key] = count_kept(file, fmt, list(columns))
    return _kept_cache[key]


def _valid(model: Any, raw: Any) -> Any:
    try:
        return model.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError:
        return model.model_validate({"name": "x"} if model is StageBase else {})
