"""Optimizer steps of every stage of a plan, counted before anything runs: from the data
size, batch, accumulation and epochs, with the engine's own rules (`schedule.stage_steps`,
`joint_steps`, `train_rows`; rows kept by `rows.count_kept`). The window's LR preview, the
run monitor and `stagelab run`'s progress bars count a plan's steps here, so a run's total
is the same everywhere before its stages start (the engine's count replaces it then).
Standard library and pydantic only."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.spec.packing_checks import PACKING_OBJECTIVES
from engine.spec.plan import parse_plan_text
from engine.spec.problems import PlanInvalid
from engine.spec.rows import FORMAT_BY_SUFFIX, count_kept, needed_columns, stage_objective
from engine.spec.schedule import joint_steps, stage_steps, train_rows
from engine.spec.settings import DataSource
from engine.spec.stages import StageBase

UNKNOWN_SIZE_STEPS = 100  # drawn for a stage whose data size cannot be known here
PACKED_ESTIMATE = "packing: at most this many; the run counts its packed sequences"
LOOP_KEYS = ("epochs", "max_steps", "batch_size", "grad_accum")


def split_files(path: Path) -> dict[str, Path]:
    """Files of a data path by split: one file is the 'train' split, a folder holds one
    `<split>.<ext>` file per split (as the engine reads it)."""
    if path.is_dir():
        return {p.stem: p for p in sorted(path.iterdir()) if p.suffix.lower() in FORMAT_BY_SUFFIX}
    return {"train": path}


def planned_steps(stage: dict[str, Any], plan_dir: Path) -> tuple[int, str]:
    """A raw stage's optimizer steps and why the count is a guess ('' when it is exact).
    An evaluation-only stage (ensemble) has none; settings that are invalid count with
    their defaults."""
    if stage.get("kind") in ("ensemble", "merge"):
        return 0, ""
    loop = _loop(stage)
    if loop.max_steps:
        return loop.max_steps, ""
    if stage.get("kind") == "joint":
        return _joint_steps(stage, plan_dir)
    objective = stage_objective(stage)
    rows, estimate = _train_rows(stage.get("data"), plan_dir, objective)
    if rows is None:
        return UNKNOWN_SIZE_STEPS, estimate
    if stage.get("packing") is True and objective in PACKING_OBJECTIVES:
        # Packed sequences depend on token lengths, which only the run's tokenizer knows
        # (a built-in one learns from the data): the unpacked count is an upper bound.
        return stage_steps(loop, rows), PACKED_ESTIMATE
    return stage_steps(loop, rows), estimate


def plan_stage_steps(stages: list[Any], plan_dir: Path) -> list[tuple[str, str, int]]:
    """(name, kind, steps) of each raw stage of a plan (a stage that is not a mapping counts
    as an empty one)."""
    out = []
    for i, raw in enumerate(stages):
        stage = raw if isinstance(raw, dict) else {}
        steps, _ = planned_steps(stage, plan_dir)
        out.append((str(stage.get("name") or f"stage {i}"), str(stage.get("kind", "")), steps))
    return out


def _loop(stage: dict[str, Any]) -> StageBase:
    raw = {"name": "x", **{k: stage[k] for k in LOOP_KEYS if k in stage}}
    try:
        return StageBase.model_validate(raw)
    except ValidationError:
        return StageBase.model_validate({"name": "x"})


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
    return joint_steps(_loop(stage), counted, str(stage.get("sampling", "all"))), ""


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


def recorded_plan_steps(plan_text: str, plan_dir: str | Path) -> list[tuple[str, str, int]]:
    """(name, kind, steps) of each stage of a run's recorded plan; [] for a plan that no
    longer parses (totals then come from the engine alone)."""
    try:
        data = parse_plan_text(plan_text, source="plan")
    except PlanInvalid:
        return []
    stages = data.get("stages") if isinstance(data.get("stages"), list) else []
    return plan_stage_steps(stages, Path(plan_dir))
