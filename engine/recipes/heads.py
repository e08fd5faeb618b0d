"""Batches, losses and evaluation forwards of a model with a head (MLM masks, next-token
targets, the token-weighted cross-entropy, regression), and the data of a stage with one
source, as plain functions the recipes share.

A masked-LM training loss projects onto the vocabulary only the positions that carry a
target (`masked_width`, `sparse_head_loss`; docs/engine.md, "The masked-LM head on the
masked positions"): the projection is the biggest matmul of a small model and ~15 % of
the positions are targets.
"""

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


def head_loss(
    model: torch.nn.Module,
    batch: Batch,
    targets: int,
    causal: bool,
    *,
    width: int | None = None,
) -> StepLoss:
    """Summed cross-entropy of the model's head over the labelled positions, divided by
    the step's count of them: every labelled token (or example) weighs the same however
    the micro-batches split them.

    Args:
        width: at least the most labelled positions of any row (`masked_width`): the head
            then projects only that many positions per row (`sparse_head_loss`); None:
            every position.
    """
    batch = dict(batch)
    labels = batch.pop("labels")
    if causal and fuses_loss(model):  # kernels: liger — the logits are never materialised
        return StepLoss(fused_causal_loss(model, batch, labels, targets))
    if width is not None and not causal:
        return StepLoss(sparse_head_loss(model, batch, labels, width) / targets)
    logits, labels = align_logits(model(**batch).logits, labels, causal)
    return StepLoss(cross_entropy_sum(logits, labels) / targets)


# --- the masked-LM head on the masked positions ------------------------------------------


def masked_width(probability: float, length: int) -> int | None:
    """The most targets `mask_tokens` picks in a row `length` wide (round(n·p) of n ≤ length
    tokens, at least 1, is at most ⌊length·p⌋ + 1 whatever the float rounding), or None
    when that is the whole row (nothing to save). Augmentation only moves or drops
    targets, so it holds after it too; it needs the batch's width only, a host number."""
    width = int(length * probability) + 1
    return width if width < length else None


def labelled_columns(labels: torch.Tensor, width: int) -> torch.Tensor:
    """[rows, width] columns: each row's labelled positions left to right, then unlabelled
    ones (whose labels are IGNORE) to fill the width. A stable sort on the device: a static
    shape and no device sync, where `nonzero` or a boolean index would wait for the
    device to count."""
    labelled = (labels != IGNORE).to(torch.uint8)
    return labelled.sort(dim=1, descending=True, stable=True).indices[:, :width]


def sparse_head_loss(
    model: torch.nn.Module, batch: Batch, labels: torch.Tensor, width: int
) -> torch.Tensor:
    """Summed cross-entropy of a masked-LM head over the labelled positions, with the
    output embedding (the vocabulary projection) applied to `width` picked positions per
    row instead of all of them: equal to the full head's loss, and its gradients.

    A model whose output embedding never sees [rows, length, hidden] (none, or a head that
    projects otherwise) returns every position's logits, which then count as usual.
    """
    if not _picks_positions(model):
        return cross_entropy_sum(model(**batch).logits, labels)
    columns = labelled_columns(labels, width)
    # A compiled model: the width changes with the batch's, one graph serves every width.
    torch._dynamo.maybe_mark_dynamic(columns, 1)
    _PICKING.columns = columns
    try:
        logits = model(**batch).logits
    finally:
        _PICKING.columns = None
    if logits.shape[1] != width:  # the hook did not apply: every position's logits
        return cross_entropy_sum(logits, labels)
    return cross_entropy_sum(logits, labels.gather(1, columns))


class _Picking:
    """The columns ([rows, width]) the output embedding of the model in a sparse forward
    projects; None outside one (evaluation, samples, a model handed on: the head is the
    model's own). One forward at a time: the training thread's."""

    columns: torch.Tensor | None = None


# A module global, not an attribute of the hook: torch.compile reads a tensor reached
# through a module (as the hook is) with fixed shapes, and would compile again for every
# new width; read from here it is an input whose width is dynamic.
_PICKING = _Picking()


def _pick_positions(module: torch.nn.Module, args: tuple) -> tuple | None:
    """Forward pre-hook of an output embedding: its [rows, length, hidden] input becomes
    the picked columns' only, so the model returns [rows, width, vocabulary] logits."""
    columns = _PICKING.columns
    if columns is None or not args:
        return None
    hidden = args[0]
    if hidden.dim() != 3 or hidden.shape[0] != columns.shape[0]:
        return None  # not per position of the batch's rows (e.g. unpadded tokens)
    index = columns.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
    return (hidden.gather(1, index), *args[1:])


def _picks_positions(model: torch.nn.Module) -> bool:
    """Whether the model has an output embedding module (BERT's cls.predictions.decoder,
    RoBERTa's lm_head.decoder, DistilBERT's vocab_projector; a peft model's, its base
    model's), with the position-picking hook put on it if not there yet: on the first
    training loss, before a compiled forward traces the model (a hook added after tracing
    would be left out of the graph). Looked up on the module itself, so a copy of a model
    or another wrapper of the same one never gets a second hook."""
    get_output = getattr(model, "get_output_embeddings", None)
    head = get_output() if callable(get_output) else None
    if not isinstance(head, torch.nn.Module):
        return False
    if not any(hook is _pick_positions for hook in head._forward_pre_hooks.values()):
        head.register_forward_pre_hook(_pick_positions)
    return True


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
