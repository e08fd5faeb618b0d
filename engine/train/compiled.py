"""What keeps a compiled stage (`compile: true`) on one graph (issue 32, item 1).

* Padded lengths change from batch to batch. Left alone, torch.compile traces the first
  length as a constant and compiles again at the next one; the sequence dimension of every
  training batch is marked dynamic from the first step instead, so one graph serves every
  length (and packed, fixed-length batches alike).
* Evaluation, the teacher's score before training and sample generation run the eager
  model: eval mode, `no_grad`, a smaller last batch and `generate`'s cache would each be a
  graph of their own, compiled for a forward that runs a few times per stage.
* Each change of freezing changes the backward: the model compiles once per freezing
  state, and Dynamo's recompile limit is raised to the stage's count of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from engine.spec.settings import Freezing
from engine.train.freezing import frozen_layer_count


def steady_shapes(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mark the sequence dimension (1) of a batch's tensors dynamic, so a new padded length
    reuses the compiled graph. `maybe_`: a model that needs a fixed length still runs."""
    for value in batch.values():
        if value.dim() >= 2:
            torch._dynamo.maybe_mark_dynamic(value, 1)
    return batch


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Compiled modules run their eager forward in here (nothing compiles)."""
    with torch.compiler.set_stance("force_eager"):
        yield


def allow_freezing_recompiles(freezing: Freezing, steps: int) -> None:
    """Raise Dynamo's recompile limit (8 per function by default) above the stage's count
    of freezing states, past which it would silently run the model eager."""
    states = len({frozen_layer_count(freezing, step) for step in range(steps)})
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, states + 8)
