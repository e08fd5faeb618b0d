"""Batches, losses and evaluation forwards of a model with a head (MLM masks, next-token
targets, the token-weighted cross-entropy, regression), and the data of a stage with one
source, as plain functions the recipes share."""

from __future__ import annotations

from typing import Any

import torch

from engine.data.encode import IGNORE
from engine.runtime.context import StageContext
from engine.spec.schedule import stage_steps
from engine.train.batches import Streams
from engine.train.kernels import fused_causal_loss, fuses_loss
from engine.train.losses import cross_entropy_sum, labelled_count, squared_error
from engine.train.recipe import (
    Batch,
    Drawn,
    EvalSet,
    LoopSettings,
    SampleSource,
    StepLoss,
    one_model_settings,
)

# The data source of a stage with one: its training split.
TRAIN_SOURCE = "train"
# Objectives whose targets are the next tokens (the model shifts its logits by one).
CAUSAL = ("causal_lm", "causal_lm_sft")


def one_source(rows: list[Any]) -> dict[str, list[Any]]:
    """The sources of a one-source stage: its training rows."""
    return {TRAIN_SOURCE: rows}


def epoch_steps(ctx: StageContext, rows: list[Any]) -> int:
    """Optimizer steps of a one-source stage: `max_steps`, or its epochs over `rows`."""
    return stage_steps(ctx.stage, len(rows))


def draw_train(streams: Streams) -> Drawn:
    """The next micro-batch of a one-source stage."""
    return Drawn(TRAIN_SOURCE, streams[TRAIN_SOURCE].next())


class OneSourceStage:
    """The loop's questions answered for a stage that trains one model (`self.model`) on one
    training split (`self.train_rows`): pretrain, train, grow, distill, preference."""

    ctx: StageContext
    model: torch.nn.Module
    train_rows: list[Any]

    def loop_settings(self) -> LoopSettings:
        """The one model is what freezing and the optimizer act on."""
        return one_model_settings(self.ctx.stage, self.model)

    def sources(self) -> dict[str, list[Any]]:
        """The training split."""
        return one_source(self.train_rows)

    def steps(self) -> int:
        """`max_steps`, or the epochs over the training split."""
        return epoch_steps(self.ctx, self.train_rows)

    def draw(self, streams: Streams, micro_step: int) -> Drawn:
        """The training split's next micro-batch."""
        return draw_train(streams)


def one_eval_set(
    ctx: StageContext,
    rows: list[Any] | None,
    predict: Any,
    labels: list[str] | None,
    *,
    regression: bool = False,
    samples: SampleSource | None = None,
) -> list[EvalSet]:
    """The evaluation of a one-model stage: `rows` through `predict`, with the stage's
    metrics (no rows: nothing is evaluated), and its sample outputs when the plan asks."""
    return [
        EvalSet(
            rows=rows,
            predict=predict,
            num_classes=len(labels) if labels else None,
            labels=labels,
            metrics=ctx.stage.eval.metrics,
            regression=regression,
            samples=samples if ctx.stage.eval.samples is not None else None,
        )
    ]


# How a model trained on each objective answers a sample input.
SAMPLE_TASKS = {
    "sequence_classification": "classify",
    "token_classification": "classify",
    "sequence_regression": "classify",
    "masked_lm": "fill",
    "causal_lm": "generate",
    "causal_lm_sft": "generate",
    "preference": "generate",
}


def sample_source(
    objective: str, model: torch.nn.Module, tokenizer: Any, labels: list[str] | None
) -> SampleSource:
    """What a one-model stage's sample outputs need (engine.train.samples)."""
    return SampleSource(
        task=SAMPLE_TASKS[objective],
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        tokens=objective == "token_classification",
    )


def mask_tokens(
    batch: dict[str, torch.Tensor],
    *,
    probability: float,
    mask_id: int,
    vocab_size: int,
    specials: list[int],
    seed: int,
    micro_step: int,
) -> dict[str, torch.Tensor]:
    """BERT masking: pick `max(1, round(n * probability))` of each row's n real tokens as
    targets, as BERT's reference data code does, so a one-word row still teaches something;
    of those 80% become [MASK], 10% a random token, 10% stay. Draws come from a generator
    seeded by the step, so a resumed run masks exactly as an uninterrupted one."""
    gen = torch.Generator().manual_seed(seed * 1_000_033 + micro_step)
    ids = batch["input_ids"].clone()
    labels = ids.clone()
    candidates = batch["attention_mask"].bool() & ~torch.isin(ids, torch.tensor(specials))
    counts = candidates.sum(dim=1)
    wanted = torch.where(
        counts > 0, torch.round(counts * probability).clamp(min=1), torch.zeros_like(counts)
    )
    # A random order of each row's candidates (the others last); the first `wanted` are picked.
    scores = torch.rand(ids.shape, generator=gen).masked_fill(~candidates, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    picked = candidates & (rank < wanted.unsqueeze(1))
    labels[~picked] = IGNORE
    to_mask = picked & (torch.rand(ids.shape, generator=gen) < 0.8)
    ids[to_mask] = mask_id
    to_random = picked & ~to_mask & (torch.rand(ids.shape, generator=gen) < 0.5)
    ids[to_random] = torch.randint(vocab_size, ids.shape, generator=gen)[to_random]
    return dict(batch, input_ids=ids, labels=labels)


def causal_labels(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Next-token targets: the inputs themselves (the model shifts), padding ignored."""
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = IGNORE
    return dict(batch, labels=labels)


def add_targets(
    batch: Batch,
    objective: str,
    ctx: StageContext,
    tokenizer: Any,
    specials: list[int],
    *,
    seed: int,
    micro_step: int,
) -> Batch:
    """MLM masks or next-token targets for language modelling; supervised rows (causal
    fine-tuning on prompts or chats among them) have their labels already."""
    if objective == "masked_lm":
        return mask_tokens(
            batch,
            probability=ctx.stage.mlm_probability,
            mask_id=tokenizer.mask_token_id,
            vocab_size=len(tokenizer),
            specials=specials,
            seed=seed,
            micro_step=micro_step,
        )
    if objective in CAUSAL and "labels" not in batch:
        return causal_labels(batch)
    return batch


def shift_for_causal(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Align causal-LM logits with the tokens they predict, for accuracy."""
    return logits[:, :-1, :], labels[:, 1:]


def count_labelled(labels: torch.Tensor, causal: bool) -> int:
    """Labelled positions the logits predict (causal LM shifts by one); host tensors."""
    return labelled_count(labels[:, 1:] if causal else labels)


def align_logits(
    logits: torch.Tensor, labels: torch.Tensor, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the labels they predict (shifted for causal LM)."""
    return shift_for_causal(logits, labels) if causal else (logits, labels)


def head_loss(model: torch.nn.Module, batch: Batch, targets: int, causal: bool) -> StepLoss:
    """Summed cross-entropy of the model's head over the labelled positions, divided by
    the step's count of them: every labelled token (or example) weighs the same however
    the micro-batches split them."""
    batch = dict(batch)
    labels = batch.pop("labels")
    if causal and fuses_loss(model):  # kernels: liger — the logits are never materialised
        return StepLoss(fused_causal_loss(model, batch, labels, targets))
    logits, labels = align_logits(model(**batch).logits, labels, causal)
    return StepLoss(cross_entropy_sum(logits, labels) / targets)


def regression_loss(model: torch.nn.Module, batch: Batch, targets: int) -> StepLoss:
    """Summed squared error of the regression head over the rows, divided by the step's
    row count (mean squared error over the step)."""
    batch = dict(batch)
    labels = batch.pop("labels")
    return StepLoss(squared_error(model(**batch).logits.squeeze(-1), labels) / targets)


def regression_predict(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation forward of a regression head: [rows] predictions and targets."""
    batch = dict(batch)
    labels = batch.pop("labels")
    return model(**batch).logits.squeeze(-1).float(), labels.float()


def head_predict(
    model: torch.nn.Module, batch: Batch, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation forward of a model with a head: aligned logits and labels."""
    batch = dict(batch)
    labels = batch.pop("labels")
    return align_logits(model(**batch).logits, labels, causal)
