"""Learning-rate schedules as plain functions of the step.

The engine's scheduler and the GUI's LR preview both call `lr_multiplier`, so the preview
shows exactly what training will do.
"""

from __future__ import annotations

import math

from engine.spec.settings import Schedule


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


def lr_curve(schedule: Schedule, peak_lr: float, total_steps: int) -> list[float]:
    """Learning rate at every optimizer step of a stage."""
    return [peak_lr * lr_multiplier(schedule, s, total_steps) for s in range(total_steps)]
