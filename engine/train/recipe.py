"""The interface every stage kind's recipe implements, and the loop relies on.

A recipe says *what* a stage trains; the loop (`engine.train.loop`) says *how*: the fixed
order of freezing, forward/backward, clipping, stepping, logging, evaluation, checkpoints
and control is the same for every kind. The interface is wide enough for stages with more
than one model or data source:

* `trained_modules()` are optimised, checkpointed and saved (the primary one is `model`:
  freezing, best weights and the stage output apply to it); `frozen_modules()` only run
  (a distillation teacher: eval mode, no gradients, never in a checkpoint).
* `sources()` names the training rows of each data source; the loop keeps one resumable
  position per source in the checkpoint, and `draw()` picks the next micro-batch from
  them (one source, or an interleaving rule of a multi-task stage).
* `loss()` is the stage's loss of one micro-batch (not fixed to `model(**batch).loss`),
  with named parts the loop records beside `train/loss`; `predict()` is the evaluation
  forward.
* `trains` is False for an evaluation-only stage (an ensemble): the loop then evaluates
  once and the stage has no steps, optimizer or checkpoint.
* `save()` writes one output folder, or several.

Optional hooks, for stages with several models (a joint stage), read by the loop with
`getattr`: `eval_sets(prefix)` (one `EvalSet` per member instead of `eval_rows`/`predict`),
`freezable()` (the models freezing acts on; default `[model]`), `lr_multipliers()`
(learning-rate factors by parameter id) and `micro_batches_per_step` (default
`grad_accum`).

Recipes share code through plain functions (`engine.recipes.common`), never through a
base class: this module defines the contract only. `RECIPES` in `engine.recipes` maps
every kind of `engine.spec.RUNNABLE_KINDS` to its recipe (a test checks both ways).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from engine.runtime.context import StageContext
    from engine.train.batches import Streams

Batch = dict[str, torch.Tensor]


@dataclass
class StepLoss:
    """The loss of one micro-batch, already divided by the step's target count, so the
    micro-batches of an optimizer step sum to the step's mean loss.

    `parts` are components on the same scale (e.g. `loss_task`, `loss_kd`), recorded as
    `train/<name>`; they are detached by the loop.
    """

    loss: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class EvalSet:
    """Rows evaluated with one forward: the stage's, or one member's of a joint stage."""

    rows: list[Any] | None
    predict: Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]
    num_classes: int | None
    labels: list[str] | None
    metrics: list[str]
    regression: bool = False
    name: str = ""  # a member's name: its metrics are recorded as <prefix>/<metric>/<name>
    weight: float = 1.0  # its share of the stage's total <prefix>/loss


@runtime_checkable
class Recipe(Protocol):
    """What one stage kind provides to the loop and the runner."""

    ctx: StageContext
    trains: bool  # False: evaluation only (no optimizer, no steps, no checkpoint)
    model: torch.nn.Module  # the primary trained model (freezing, best weights, output)
    labels: list[str] | None  # label names of a classification head, else None
    num_classes: int | None
    pad_id: int
    mask_id: int | None
    special_ids: list[int]  # left alone by masking and augmentation
    eval_rows: list[Any] | None

    def setup(self) -> None:
        """Load data, build tokenizer(s) and model(s); called once before the loop."""

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """Modules the optimizer updates and checkpoints hold; `model` is the primary one."""

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """Modules the stage only runs (eval mode, no gradients, not checkpointed)."""

    def sources(self) -> dict[str, list[Any]]:
        """Encoded training rows per data source; each gets a resumable position."""

    def steps(self) -> int:
        """Optimizer steps of the stage (the same count the window's LR preview shows)."""

    def draw(self, streams: Streams, micro_step: int) -> Batch:
        """The next training micro-batch, padded, from one of the streams."""

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """Add the targets (MLM masks, causal labels) to a padded batch (host tensors)."""

    def count_targets(self, batch: Batch) -> int:
        """Labelled positions of a prepared batch (host tensors: no device sync); the
        step's micro-batch losses are divided by their sum."""

    def loss(self, batch: Batch, targets: int) -> StepLoss:
        """The micro-batch's loss on the device (autocast is on), divided by `targets`."""

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluation forward: logits and the labels they predict, aligned."""

    def save(self) -> list[Path]:
        """Write the stage output folder(s); the first is the stage's output."""
