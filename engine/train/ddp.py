"""The step's loss as a module, so that DistributedDataParallel wraps what a recipe
computes: the loop's own piece of a several-process run (the process group itself is
engine.runtime.distributed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.train.optim import l1_penalty

if TYPE_CHECKING:
    from engine.train.recipe import Targets, TrainingRecipe


class StepLossModule(torch.nn.Module):
    """The step's loss as a module's forward, so that DDP sees the recipe's forward: the
    trained modules are its children; the recipe calls them itself."""

    def __init__(
        self, recipe: TrainingRecipe, trained: torch.nn.Module, l1: float, micro: int, world: int
    ):
        super().__init__()
        self.trained = trained
        self._recipe, self._l1, self._micro, self._world = recipe, l1, micro, world

    def forward(self, source: str, batch: dict[str, torch.Tensor], targets: Targets):
        """(loss to back-propagate, this process's share of the recorded loss, parts).

        Each process's loss is its rows' summed loss over the global target count; DDP
        averages gradients, so the back-propagated loss is scaled by the world size."""
        out = self._recipe.loss(source, batch, targets)
        if not self._l1:
            return out.loss * self._world, out.loss, out.parts
        penalty = self._l1 * l1_penalty(self.trained) / self._micro
        return out.loss * self._world + penalty, out.loss + penalty / self._world, out.parts
