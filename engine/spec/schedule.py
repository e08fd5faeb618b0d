"""Learning-rate schedules as plain functions of the step.

The engine's scheduler and the GUI's LR preview both call `lr_multiplier`, so the preview
shows exactly what training will do.
"""

from __future__ import annotations

import math

from engine.spec.settings import DataSource, Schedule
from engine.spec.stages import StageBase


def held_out_rows(n_rows: int, eval_ratio: float) -> int:
    """Rows held out for evaluation from a split of `n_rows` (as `datasets` rounds: up)."""
    return math.ceil(n_rows * eval_ratio) if eval_ratio > 0 else 0


def train_rows(data: DataSource, n_rows: int) -> int:
    """Training rows left from a train split of `n_rows` rows after hold-outs and limit
    (the test rows are held out first, then the evaluation rows from the rest)."""
    if not data.test_split:
        n_rows -= held_out_rows(n_rows, data.test_ratio)
    if not data.eval_split:
        n_rows -= held_out_rows(n_rows, data.eval_ratio)
    return min(n_rows, data.limit) if data.limit is not None else n_rows


def stage_steps(stage: StageBase, n_rows: int) -> int:
    """Optimizer steps of a stage: `max_steps`, or epochs over `n_rows` training rows.

    Incomplete batches at the end of an epoch are dropped, so every step sees the same
    batch size; the engine and the GUI's LR preview both count steps here.
    """
    if stage.max_steps:
        return stage.max_steps
    per_epoch = max(max(n_rows // stage.batch_size, 1) // stage.grad_accum, 1)
    return max(math.ceil((stage.epochs or 1.0) * per_epoch), 1)


def joint_steps(stage: StageBase, member_rows: list[int], sampling: str) -> int:
    """Optimizer steps of a joint stage whose members have `member_rows` training rows.

    With `sampling: all` every step holds a batch of every member, so an epoch is a pass
    over the largest member's rows (smaller members' streams wrap around); with one member
    per step, an epoch is as many steps as all members' batches together.
    """
    if stage.max_steps:
        return stage.max_steps
    batches = [max(n // stage.batch_size, 1) for n in member_rows] or [1]
    total = max(batches) if sampling == "all" else sum(batches)
    per_epoch = max(total // stage.grad_accum, 1)
    return max(math.ceil((stage.epochs or 1.0) * per_epoch), 1)


def warmup_steps(schedule: Schedule, total_steps: int) -> int:
    """Warm-up length in steps for a stage of `total_steps` optimizer steps."""
    if schedule.warmup_steps:
        return min(schedule.warmup_steps, total_steps)
    return int(schedule.warmup_ratio * total_steps)


def lr_multiplier(schedule: Schedule, step: int, total_steps: int) -> float:
    """Factor applied to the peak learning rate at optimizer step `step` (0-based).

    Args:
        schedule: the stage's schedule settings.
        step: optimizer steps taken so far.
        total_steps: optimizer steps in the stage.

    Returns:
        A factor in [0, 1].
    """
    total_steps = max(total_steps, 1)
    warm = warmup_steps(schedule, total_steps)
    if step < warm:
        return (step + 1) / (warm + 1)
    floor = schedule.min_lr_ratio
    span = max(total_steps - warm, 1)
    progress = min(max((step - warm) / span, 0.0), 1.0)
    name = schedule.name
    if name == "constant":
        return 1.0
    if name == "linear":
        return floor + (1.0 - floor) * (1.0 - progress)
    if name == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if name == "cosine_restarts":
        cycle_progress = (progress * schedule.cycles) % 1.0 if progress < 1.0 else 1.0
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * cycle_progress))
    if name == "step":
        return max(floor, schedule.gamma ** ((step - warm) // schedule.step_size))
    raise ValueError(f"unknown schedule {name!r}")
