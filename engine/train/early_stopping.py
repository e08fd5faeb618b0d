"""Early stopping: whether an evaluation beats the best so far, and the patience counter
that ends a stage once its metric has not improved for `patience` evaluations. Keeping the
best evaluation's weights is engine/train/best.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.runtime.context import StageContext
    from engine.train.loop import LoopState


def better(goal: str, value: float, than: float | None, delta: float = 0.0) -> bool:
    """Whether `value` beats `than` by more than `delta` in the direction of `goal`."""
    if than is None:
        return value == value  # a NaN is never the best
    return value < than - delta if goal == "min" else value > than + delta


def count_patience(ctx: StageContext, state: LoopState, values: dict[str, float]) -> None:
    """Count an evaluation that does not improve on the best by `min_delta`; at `patience`
    of them in a row the stage stops early (with an `early_stop` event)."""
    stopping = ctx.stage.regularization.early_stopping
    if stopping is None or stopping.metric not in values:
        return
    value = values[stopping.metric]
    if better(stopping.goal, value, state.best, stopping.min_delta):
        state.best, state.bad_evals = value, 0
        return
    state.bad_evals += 1
    if state.bad_evals >= stopping.patience:
        state.stopped_early = True
        best = "nothing" if state.best is None else f"{state.best:.4g}"
        ctx.recorder.event(
            "early_stop",
            f"early stopping at step {state.step}: {stopping.metric} has not improved on "
            f"{best} for {state.bad_evals} evaluations",
            stage_idx=ctx.index,
        )
