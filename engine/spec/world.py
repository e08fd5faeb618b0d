"""What a plan needs of the processes it trains on (a torch-free check shared by the
launcher, which refuses before recording, and the engine, which checks again)."""

from __future__ import annotations

from typing import Any


def batch_problems(plan: Any, world: int) -> list[str]:
    """Why the plan cannot train on `world` processes: `batch_size` is the global batch,
    split evenly across them (evaluation-only stages run on one process)."""
    if world <= 1:
        return []
    return [
        f"stages[{i}] '{stage.name}': batch_size {stage.batch_size} cannot be split over "
        f"{world} processes (batch_size is the global batch; use a multiple of {world})."
        for i, stage in enumerate(plan.stages)
        if stage.kind not in ("ensemble", "merge") and getattr(stage, "batch_size", 0) % world
    ]
