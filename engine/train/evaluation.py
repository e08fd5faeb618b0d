"""Evaluation of a stage: its eval (test) rows, or each member's of a joint stage, with
the metrics recorded and the confusion matrix in an event; evaluation-only stages."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch

from engine.data.encode import pad_batch
from engine.train.batches import row_length
from engine.train.feed import pad_multiple
from engine.train.metrics import EvalAccumulator, RegressionAccumulator
from engine.train.recipe import EvalSet

if TYPE_CHECKING:
    from engine.runtime.context import StageContext
    from engine.train.recipe import Batch, Recipe


def autocast_for(ctx: StageContext):
    """bf16/fp16 autocast on CUDA as the stage asks; nothing elsewhere."""
    precision = ctx.stage.precision
    if ctx.device.type == "cuda" and precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return nullcontext()


def _all_modules(recipe: Recipe) -> list[torch.nn.Module]:
    return [*recipe.trained_modules().values(), *recipe.frozen_modules().values()]


def _eval_sets(
    ctx: StageContext,
    recipe: Recipe,
    prefix: str,
    rows: list[Any] | None,
    predict: Callable[[Batch], tuple[torch.Tensor, torch.Tensor]] | None,
) -> list[EvalSet]:
    """What an evaluation covers: the recipe's own sets (a joint stage: one per member), or
    its eval (test) rows through `predict`."""
    own = getattr(recipe, "eval_sets", None)
    if own is not None and rows is None and predict is None:
        return own(prefix)
    if rows is None:
        rows = getattr(recipe, "test_rows", None) if prefix == "test" else recipe.eval_rows
    return [
        EvalSet(
            rows=rows,
            predict=predict or recipe.predict,
            num_classes=recipe.num_classes,
            labels=recipe.labels,
            metrics=ctx.stage.eval.metrics,
            regression=getattr(recipe, "regression", False),
        )
    ]


def evaluate(
    ctx: StageContext,
    recipe: Recipe,
    step: int,
    *,
    predict: Callable[[Batch], tuple[torch.Tensor, torch.Tensor]] | None = None,
    prefix: str = "eval",
    rows: list[Any] | None = None,
) -> dict[str, float]:
    """Evaluate on the stage's eval rows; record metrics (and the confusion matrix).

    Args:
        ctx: the stage's context.
        recipe: the stage's recipe (eval rows, batch preparation, `predict`, or its own
            `eval_sets`).
        step: the step the metrics are recorded at.
        predict: another evaluation forward on the same rows and masks (a distillation
            teacher's), recorded as `<prefix>/<metric>` with an event `<prefix>_eval`.
        prefix: the metric keys' prefix.
        rows: other rows than the eval split's (default for prefix "test": the test rows).

    Returns:
        The values by metric name; a member's are named `<metric>/<member>`, and several
        members' weighted losses add up to the stage's `loss`.
    """
    sets = [s for s in _eval_sets(ctx, recipe, prefix, rows, predict) if s.rows]
    if not sets:
        return {}
    trained = recipe.trained_modules().values()
    for module in trained:
        module.eval()
    values: dict[str, float] = {}
    for each in sets:
        values.update(_evaluate_set(ctx, recipe, step, each, prefix))
    if recipe.trains:
        for module in trained:
            module.train()
    named = [s for s in sets if s.name]
    if named and all(f"loss/{s.name}" in values for s in named):
        # The stage's loss is the members' losses weighted as in training.
        values["loss"] = sum(s.weight * values[f"loss/{s.name}"] for s in named)
        ctx.recorder.metrics(ctx.index, step, {f"{prefix}/loss": values["loss"]})
    return values


def _evaluate_set(
    ctx: StageContext, recipe: Recipe, step: int, each: EvalSet, prefix: str
) -> dict[str, float]:
    stage, rows = ctx.stage, each.rows
    acc = (
        RegressionAccumulator(ctx.device)
        if each.regression
        else EvalAccumulator(each.num_classes, ctx.device)
    )
    batches = range(0, len(rows), stage.batch_size)
    # Widths rounded as in training (tensor cores), never past the longest row.
    multiple = pad_multiple(stage, ctx.device)
    limit = max((row_length(r) for r in rows), default=None) if multiple > 1 else None
    with torch.no_grad(), autocast_for(ctx):
        for n, start in enumerate(batches):
            if stage.eval.max_batches and n >= stage.eval.max_batches:
                break
            batch = pad_batch(
                [rows[i] for i in range(start, min(start + stage.batch_size, len(rows)))],
                recipe.pad_id,
                multiple,
                limit,
            )
            # Evaluation noise (MLM masks) comes from a fixed generator: every evaluation of
            # the stage sees the same masks, so the numbers are comparable over time.
            batch = recipe.prepare(batch, seed=stage.seed + 1, micro_step=n, train=False)
            batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
            acc.add(*each.predict(batch))
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


def evaluate_stage(ctx: StageContext, recipe: Recipe) -> str:
    """An evaluation-only stage (`recipe.trains` is False): its modules evaluated once."""
    for module in _all_modules(recipe):
        module.to(ctx.device)
        module.eval()
    ctx.recorder.stage(ctx.index, total_steps=0, steps_done=0)
    evaluate(ctx, recipe, 0)
    return "finished"
