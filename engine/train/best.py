"""The best evaluation's weights: which evaluation is the best, the weights kept for it
(atomically, under runs/<id>/best/, across resume), and the stage output taken from the
best weights at the end. The patience counter is engine/train/early_stopping.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from engine.runtime.checkpoint import load_checkpoint, save_checkpoint
from engine.train.early_stopping import better

if TYPE_CHECKING:
    from engine.runtime.context import StageContext
    from engine.train.loop import LoopState


def _best_dir(ctx: StageContext, step: int) -> Path:
    return ctx.run_dir / "best" / f"stage{ctx.index}-step{step}"


def prune_best(ctx: StageContext, keep: set[int | None]) -> None:
    """Delete this stage's best-weights folders except those of the steps in `keep`."""
    for folder in (ctx.run_dir / "best").glob(f"stage{ctx.index}-step*"):
        if int(folder.name.rsplit("step", 1)[1]) not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def prune_best_before(ctx: StageContext, step: int | None) -> None:
    """Delete this stage's best-weights folders older than `step`, the best a checkpoint
    now on disk refers to: no resume needs them any more. Runs on the checkpoint writer's
    thread, so it leaves newer folders alone: those are the training thread's."""
    if step is None:
        return
    for folder in (ctx.run_dir / "best").glob(f"stage{ctx.index}-step*"):
        if int(folder.name.rsplit("step", 1)[1]) < step:
            shutil.rmtree(folder, ignore_errors=True)


def track_best(
    ctx: StageContext,
    state: LoopState,
    modules: dict[str, torch.nn.Module],
    values: dict[str, float],
    checkpointed: tuple[int | None, ...],
) -> None:
    """Keep the weights of the best evaluation on disk (written atomically), so the stage
    output can be the best model, also after a resume.

    Args:
        checkpointed: the best steps of the checkpoints on disk or being written; their
            weights are kept for a resume.
    """
    stopping = ctx.stage.regularization.early_stopping
    if stopping is None or stopping.metric not in values:
        return
    value = values[stopping.metric]
    if not better(stopping.goal, value, state.best_value):
        return
    state.best_value, state.best_step = value, state.step
    if stopping.restore_best:
        save_checkpoint(_best_dir(ctx, state.step), modules, {"step": state.step, "value": value})
        # The checkpoints' bests stay until the next checkpoint is on disk: a resume needs them.
        prune_best(ctx, {state.step, *checkpointed})


def restore_best(ctx: StageContext, state: LoopState, modules: dict[str, torch.nn.Module]) -> None:
    """Load the best evaluation's weights for the stage output and say where they come from."""
    stopping = ctx.stage.regularization.early_stopping
    if stopping is None or state.best_step is None:
        return
    metric = stopping.metric
    folder = _best_dir(ctx, state.best_step)
    if stopping.restore_best and state.best_step != state.step and not folder.exists():
        ctx.recorder.event(
            "best",
            f"the best weights (step {state.best_step}) are missing from {folder}; "
            f"the stage output is the last step's",
            stage_idx=ctx.index,
            level="warning",
        )
        return
    if stopping.restore_best and state.best_step != state.step:
        load_checkpoint(folder, modules)
        message = f"stage output: the weights of step {state.best_step}, the best {metric}"
    elif stopping.restore_best:
        message = f"stage output: the weights of the last step {state.step}, the best {metric}"
    else:
        message = (
            f"stage output: the weights of the last step {state.step} (restore_best is off; "
            f"the best {metric} was at step {state.best_step})"
        )
    output_step = state.best_step if stopping.restore_best else state.step
    ctx.recorder.metrics(
        ctx.index, state.step, {"best/step": state.best_step, f"best/{metric}": state.best_value}
    )
    ctx.recorder.event(
        "best",
        f"{message} ({state.best_value:.4g})",
        stage_idx=ctx.index,
        data={
            "best_step": state.best_step,
            "metric": metric,
            "value": state.best_value,
            "output_step": output_step,
        },
    )
