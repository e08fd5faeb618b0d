"""The memory estimate in the window's words: '1.4 M params (0.2 M trainable) · ≈ 0.3 GB',
its parts for the tooltip and the warning under it. The estimate itself (the arithmetic,
the model's shape, its parameters) is the engine's, in engine/spec/memory/, so `stagelab
validate` warns with the same numbers (docs/memory.md). Qt-free and torch-free."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.model.model_size import parameters_text
from engine.spec.memory import estimate as engine_estimate
from engine.spec.memory.estimate import ADVICE, gb

__all__ = ["MemoryEstimate", "estimate", "gb", "words"]


class MemoryEstimate(engine_estimate.MemoryEstimate):
    """The engine's estimate, with the inspector's words."""

    def text(self) -> str:
        """'1.4 M params (0.2 M trainable) · ≈ 0.3 GB'."""
        return (
            f"{parameters_text(self.parameters)} params "
            f"({parameters_text(self.trainable)} trainable) · ≈ {gb(self.total)}"
        )

    def breakdown(self) -> str:
        return "\n".join(f"{name}: {gb(value)}" for name, value in self.parts())

    def warning(self, free_bytes: float | None, device: str = "the GPU") -> str:
        """A sentence when the estimate exceeds the free memory of the chosen GPU."""
        if self.fits(free_bytes):
            return ""
        return f"≈ {gb(self.total)} is more than the {gb(free_bytes)} free on {device}: {ADVICE}"


def words(guess: engine_estimate.MemoryEstimate) -> MemoryEstimate:
    """An engine estimate as the window says it."""
    return MemoryEstimate(**asdict(guess))


def estimate(stages: list[Any], index: int, plan_dir: Path) -> MemoryEstimate | None:
    """The estimate of stage `index`, None if its model's size is not known yet."""
    guess = engine_estimate.estimate(stages, index, plan_dir)
    return None if guess is None else words(guess)
