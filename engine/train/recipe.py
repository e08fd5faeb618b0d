"""The two interfaces a stage kind's recipe implements: `TrainingRecipe`, which the loop
trains, and `EvaluationRecipe`, a stage that only scores (an ensemble). Both are declared
in full: the loop and the evaluation read no member a protocol does not name.

A training recipe says *what* a stage trains; the loop (`engine.train.loop`) says *how*:
the fixed order of freezing, forward/backward, clipping, stepping, logging, evaluation,
checkpoints and control is the same for every kind. The interface is wide enough for
stages with more than one model or data source:

* `trained_modules()` are optimised, checkpointed and saved (the primary one is `model`:
  best weights and the stage output apply to it); `frozen_modules()` only run (a
  distillation teacher: eval mode, no gradients, never in a checkpoint).
* `loop_settings()` holds what a stage with several models sets differently (the models
  freezing acts on, learning-rate factors, micro-batches per step); a one-model stage
  returns `one_model_settings(...)`.
* `sources()` names the training rows of each data source; the loop keeps one resumable
  position per source in the checkpoint, and `draw()` picks the next micro-batch from
  them (one source, or an interleaving rule of a multi-task stage) and says which.
* `count_targets()` counts a micro-batch's labelled positions; the loop sums them per
  source into the step's `Targets`, by which `loss()` divides.
* `loss()` is the stage's loss of one micro-batch (not fixed to `model(**batch).loss`),
  with named parts the loop records beside `train/loss`; `eval_sets()` are the rows and
  forwards an evaluation scores (one set, or one per member of a joint stage).
* `save()` writes one output folder, or several.

An evaluation-only recipe has no steps, optimizer, checkpoint or batches: after `setup()`
its `scores()` are recorded once, as an evaluation's are, and `save()` writes its output.

Recipes share code through plain functions (`engine.recipes.common`), never through a
base class: this module defines the contracts only. `RECIPES` in `engine.recipes` maps
every kind of `engine.spec.stages.RUNNABLE_KINDS` to its recipe (a test checks both ways).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

import torch

if TYPE_CHECKING:
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
class Drawn:
    """A training micro-batch (padded host tensors) and the source it came from."""

    source: str
    batch: Batch


@dataclass(frozen=True)
class Targets:
    """Labelled positions of an optimizer step's global batch, per data source (host
    counts: no device sync). A loss divides by its source's count, or by the total."""

    by_source: dict[str, int]

    @classmethod
    def of_step(cls, counted: Iterable[tuple[str, int]]) -> Targets:
        """The sum per source of the step's micro-batch counts (source, count)."""
        by_source: dict[str, int] = {}
        for source, count in counted:
            by_source[source] = by_source.get(source, 0) + count
        return cls(by_source)

    @property
    def total(self) -> int:
        """Labelled positions of the whole step (none: the step has nothing to learn)."""
        return sum(self.by_source.values())

    def of(self, source: str) -> int:
        """Labelled positions of one source's micro-batches in the step."""
        return self.by_source.get(source, 0)


@dataclass
class LoopSettings:
    """What a stage with several models sets differently in the loop."""

    freezable: list[torch.nn.Module]  # the models the stage's freezing acts on
    lr_multipliers: dict[int, float]  # learning-rate factors by parameter id (else 1)
    micro_batches_per_step: int  # forward passes accumulated into one optimizer step


def one_model_settings(stage: Any, model: torch.nn.Module) -> LoopSettings:
    """A one-model stage: freezing acts on its model, one learning rate, `grad_accum`."""
    return LoopSettings([model], {}, stage.grad_accum)


@dataclass
class SampleSource:
    """What sample outputs (`eval.samples`) ask of a one-model stage: the model and its
    tokenizer, and how it answers (`classify` a label, `fill` masks, `generate` text)."""

    task: str
    model: torch.nn.Module
    tokenizer: Any
    labels: list[str] | None = None  # a classifier's label names (none: a regression head)
    tokens: bool = False  # a label per word (token classification)


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
    samples: SampleSource | None = None  # sample outputs of eval.samples (a one-model stage)


@dataclass
class Scored:
    """Predictions an evaluation-only stage made already (an ensemble's combined
    log-probabilities), recorded as an `EvalSet`'s would be: metrics, confusion matrix,
    event."""

    logits: torch.Tensor  # [rows, classes]
    targets: torch.Tensor  # [rows] label ids
    num_classes: int | None
    labels: list[str] | None
    metrics: list[str]
    regression: bool = False
    name: str = ""


@runtime_checkable
class TrainingRecipe(Protocol):
    """What a stage kind that trains provides to the loop and the runner."""

    pad_id: int
    mask_id: int | None
    special_ids: list[int]  # left alone by masking and augmentation

    def setup(self) -> None:
        """Load data, build tokenizer(s) and model(s); called once before the loop."""

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """Modules the optimizer updates and checkpoints hold; `model` is the primary one."""

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """Modules the stage only runs (eval mode, no gradients, not checkpointed)."""

    def loop_settings(self) -> LoopSettings:
        """Freezing's models, learning-rate factors, micro-batches per step."""

    def sources(self) -> dict[str, list[Any]]:
        """Encoded training rows per data source; each gets a resumable position."""

    def steps(self) -> int:
        """Optimizer steps of the stage (the same count the window's LR preview shows)."""

    def draw(self, streams: Streams, micro_step: int) -> Drawn:
        """The next training micro-batch, padded, from one of the streams, and its source."""

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """Add the targets (MLM masks, causal labels) to a padded batch (host tensors)."""

    def count_targets(self, batch: Batch) -> int:
        """Labelled positions of a prepared batch (host tensors: no device sync)."""

    def loss(self, source: str, batch: Batch, targets: Targets) -> StepLoss:
        """The micro-batch's loss on the device (autocast is on), divided by its share of
        `targets` (the step's counts)."""

    def eval_sets(self, prefix: str) -> list[EvalSet]:
        """What an evaluation scores: the eval rows (prefix `test`: the test rows) and the
        forward that predicts them; one set per member of a joint stage."""

    def save(self) -> list[Path]:
        """Write the stage output folder(s); the first is the stage's output."""


@runtime_checkable
class EvaluationRecipe(Protocol):
    """What a stage kind that only scores provides to the runner."""

    def setup(self) -> None:
        """Load data and models; compute what the stage scores."""

    def scores(self) -> list[Scored]:
        """The predictions to record (as `eval/<metric>` at step 0)."""

    def save(self) -> list[Path]:
        """Write the stage output folder(s); the first is the stage's output."""


Recipe = TrainingRecipe | EvaluationRecipe


def evaluation_only(recipe: Recipe) -> TypeGuard[EvaluationRecipe]:
    """Whether a recipe only scores (the runner then evaluates it instead of training)."""
    return isinstance(recipe, EvaluationRecipe)
