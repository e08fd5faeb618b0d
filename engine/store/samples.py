"""Sample outputs of a run (issue 31): the model's answers on the plan's fixed inputs at
each evaluation, kept as events of kind `samples` (engine/train/samples.py writes them), so
they travel with the live channel, a remote run's mirror, resume and export like any
event. Read here per stage and step; `write_samples_jsonl` is `stagelab export --samples`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from engine.store.db import Store
from engine.store.metrics import list_events
from engine.store.records import EventInfo

SAMPLES_KIND = "samples"


@dataclass(frozen=True)
class SampleRow:
    """One input's answer at one evaluation."""

    row: int
    input: str
    output: str
    score: float | None
    target: str | None


@dataclass(frozen=True)
class SampleCheckpoint:
    """The answers of one evaluation: a stage (index and name) at a step."""

    stage_idx: int
    stage: str
    step: int
    task: str  # classify, fill or generate
    rows: tuple[SampleRow, ...]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def checkpoint_of(stage_idx: int | None, data: Any) -> SampleCheckpoint | None:
    """A `samples` event's data read as a checkpoint (None: not one; an event written by
    another version is skipped rather than failing the reader)."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        return None
    try:
        rows = tuple(
            SampleRow(
                row=int(r["row"]),
                input=str(r.get("input", "")),
                output=str(r.get("output", "")),
                score=None if r.get("score") is None else float(r["score"]),
                target=_text(r.get("target")),
            )
            for r in data["rows"]
        )
        return SampleCheckpoint(
            stage_idx=int(stage_idx or 0),
            stage=str(data.get("stage", "")),
            step=int(data["step"]),
            task=str(data.get("task", "")),
            rows=rows,
        )
    except (KeyError, TypeError, ValueError):
        return None


def samples_of_events(events: Iterable[EventInfo]) -> list[SampleCheckpoint]:
    """The checkpoints among events, by stage and step; a step recorded twice (a stage
    resumed from a checkpoint before it) keeps its latest answers."""
    found: dict[tuple[int, int], SampleCheckpoint] = {}
    for event in events:
        if event.kind != SAMPLES_KIND:
            continue
        checkpoint = checkpoint_of(event.stage_idx, event.data)
        if checkpoint is not None:
            found[(checkpoint.stage_idx, checkpoint.step)] = checkpoint
    return [found[k] for k in sorted(found)]


def list_samples(store: Store, run_id: str, stage_idx: int | None = None) -> list[SampleCheckpoint]:
    """A run's sample outputs per evaluation, by stage and step (of one stage if given)."""
    found = samples_of_events(list_events(store, run_id, kind=SAMPLES_KIND))
    return [c for c in found if stage_idx is None or c.stage_idx == stage_idx]


def write_samples_jsonl(store: Store, run_id: str, fh: TextIO) -> int:
    """One JSON line per (stage, step, input row): stage_idx, stage, step, task, row,
    input, output, score, target. Returns the lines written."""
    count = 0
    for checkpoint in list_samples(store, run_id):
        for row in checkpoint.rows:
            line = {
                "stage_idx": checkpoint.stage_idx,
                "stage": checkpoint.stage,
                "step": checkpoint.step,
                "task": checkpoint.task,
                "row": row.row,
                "input": row.input,
                "output": row.output,
                "score": row.score,
                "target": row.target,
            }
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    return count
