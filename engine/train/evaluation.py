"""Evaluation of a stage: its eval (test) rows, or each member's of a joint stage, with
the metrics recorded and the confusion matrix in an event; evaluation-only stages, whose
predictions are made already, are scored and recorded the same way."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch

from engine.data.encode import pad_batch
from engine.train.batches import row_length
from engine.train.compiled import eager
from engine.train.feed import pad_multiple
from engine.train.metrics import EvalAccumulator, RegressionAccumulator
from engine.train.samples import record_samples

if TYPE_CHECKING:
    from engine.runtime.context import StageContext
    from engine.train.recipe import EvalSet, EvaluationRecipe, Scored, TrainingRecipe


def autocast_for(ctx: StageContext):
    """bf16/fp16 autocast on CUDA as the stage asks; nothing elsewhere."""
    precision = ctx.stage.precision
    if ctx.device.type == "cuda" and precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return nullcontext()


def evaluate(
    ctx: StageContext,
    recipe: TrainingRecipe,
    step: int,
    *,
    prefix: str = "eval",
    sets: list[EvalSet] | None = None,
) -> dict[str, float]:
    """Evaluate the recipe's eval sets; record metrics (and the confusion matrix).

    Args:
        ctx: the stage's context.
        recipe: the stage's recipe (batch preparation, its modules, its `eval_sets`).
        step: the step the metrics are recorded at.
        prefix: the metric keys' prefix (`test`: the recipe's test rows).
        sets: other sets than the recipe's (a distillation teacher's forward on the
            same rows and masks, recorded as `<prefix>/<metric>` with a `<prefix>_eval`
            event).

    Returns:
        The values by metric name; a member's are named `<metric>/<member>`, and several
        members' weighted losses add up to the stage's `loss`.
    """
    sets = [s for s in (recipe.eval_sets(prefix) if sets is None else sets) if s.rows]
    if not sets:
        return {}
    # A compiled model evaluates eager: its own graphs for eval mode, no_grad, the last
    # batch and generate would be compiled for a few forwards (engine.train.compiled).
    with eager():
        return _evaluate(ctx, recipe, step, prefix, sets)


def _evaluate(
    ctx: StageContext, recipe: TrainingRecipe, step: int, prefix: str, sets: list[EvalSet]
) -> dict[str, float]:
    trained = recipe.trained_modules().values()
    for module in trained:
        module.eval()
    values: dict[str, float] = {}
    for each in sets:
        values.update(_evaluate_set(ctx, recipe, step, each, prefix))
        if prefix == "eval" and each.samples is not None:
            with torch.no_grad(), autocast_for(ctx):
                record_samples(ctx, recipe, step, each)
    for module in trained:
        module.train()
    named = [s for s in sets if s.name]
    if named and all(f"loss/{s.name}" in values for s in named):
        # The stage's loss is the members' losses weighted as in training.
        values["loss"] = sum(s.weight * values[f"loss/{s.name}"] for s in named)
        ctx.recorder.metrics(ctx.index, step, {f"{prefix}/loss": values["loss"]})
    return values


def _batches(ctx: StageContext, rows: int) -> Iterator[tuple[int, int, int]]:
    """(number, start, end) of the evaluation batches over `rows` rows (at most
    `eval.max_batches` of them)."""
    stage = ctx.stage
    for n, start in enumerate(range(0, rows, stage.batch_size)):
        if stage.eval.max_batches and n >= stage.eval.max_batches:
            return
        yield n, start, min(start + stage.batch_size, rows)


def _evaluate_set(
    ctx: StageContext, recipe: TrainingRecipe, step: int, each: EvalSet, prefix: str
) -> dict[str, float]:
    stage, rows = ctx.stage, each.rows
    # Widths rounded as in training (tensor cores), never past the longest row.
    multiple = pad_multiple(stage, ctx.device)
    limit = max((row_length(r) for r in rows), default=None) if multiple > 1 else None

    def predicted() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for n, start, end in _batches(ctx, len(rows)):
            batch = pad_batch([rows[i] for i in range(start, end)], recipe.pad_id, multiple, limit)
            # Evaluation noise (MLM masks) comes from a fixed generator: every evaluation of
            # the stage sees the same masks, so the numbers are comparable over time.
            batch = recipe.prepare(batch, seed=stage.seed + 1, micro_step=n, train=False)
            batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
            yield each.predict(batch)

    return _record(ctx, step, each, prefix, predicted())


def _record(
    ctx: StageContext,
    step: int,
    each: EvalSet | Scored,
    prefix: str,
    predicted: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, float]:
    """Score batches of (logits, labels); record the metrics and an event."""
    acc = (
        RegressionAccumulator(ctx.device)
        if each.regression
        else EvalAccumulator(each.num_classes, ctx.device)
    )
    with torch.no_grad(), autocast_for(ctx):
        for logits, labels in predicted:
            acc.add(logits, labels)
    found, matrix = acc.result(each.metrics)
    suffix = f"/{each.name}" if each.name else ""
    ctx.recorder.metrics(ctx.index, step, {f"{prefix}/{k}{suffix}": v for k, v in found.items()})
    data: dict[str, Any] = {"step": step, "metrics": found}
    if each.name:
        data["member"] = each.name
    if matrix is not None:
        data["confusion_matrix"] = matrix
        data["labels"] = each.labels
    summary = ", ".join(f"{k} {v:.4g}" for k, v in found.items())
    kind, who = ("eval", "") if prefix == "eval" else (f"{prefix}_eval", f"{prefix}, ")
    who += f"{each.name}, " if each.name else ""
    ctx.recorder.event(kind, f"{who}step {step}: {summary}", stage_idx=ctx.index, data=data)
    return {f"{k}{suffix}": v for k, v in found.items()}


def evaluate_stage(ctx: StageContext, recipe: EvaluationRecipe) -> str:
    """An evaluation-only stage: its scores recorded once, as `eval/<metric>` at step 0,
    in batches of the stage's size as an evaluation reads rows."""
    ctx.recorder.stage(ctx.index, total_steps=0, steps_done=0)
    for scored in recipe.scores():
        batches = (
            (
                scored.logits[start:end].to(ctx.device, non_blocking=True),
                scored.targets[start:end].to(ctx.device, non_blocking=True),
            )
            for _, start, end in _batches(ctx, len(scored.targets))
        )
        _record(ctx, 0, scored, "eval", batches)
    return "finished"
