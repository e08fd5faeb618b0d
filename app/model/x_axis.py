"""The x axis of a run's panels: the global step, the wall time since the run's first
recorded step, or the tokens seen (when the record has a tokens metric). Curves are kept
by global step (`Curve`); `x_map` turns those steps into the chosen axis. Qt-free."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from app.model.panels import TOKEN_KEYS

if TYPE_CHECKING:
    from app.model.run_series import RunSeries

NO_TOKENS = (
    "This run records no tokens-seen metric ({}), so its curves can only be drawn "
    "by step or wall time."
).format(", ".join(TOKEN_KEYS))
NO_CLOCK = "No step of this run has been recorded yet, so there is no wall time to draw by."


def _global(run: RunSeries, per_stage: dict) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for idx in sorted(per_stage):
        series = per_stage[idx]
        if series.size:
            xs.append(series.steps + run.offset(idx))
            ys.append(series.values)
    if not xs:
        return np.empty(0), np.empty(0)
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _tokens(run: RunSeries, per_stage: dict) -> tuple[np.ndarray, np.ndarray]:
    """Tokens seen by the run: the engine counts each stage's own (checkpointed with the
    stage), so a stage starts where the earlier stages' last counts add up to."""
    xs, ys, before = [], [], 0.0
    for idx in sorted(per_stage):
        series = per_stage[idx]
        finite = np.isfinite(series.values)
        steps, values = series.steps[finite], series.values[finite]
        if steps.size:
            xs.append(steps + run.offset(idx))
            ys.append(np.maximum.accumulate(values) + before)  # seen tokens never go back
            before = float(ys[-1][-1])
    if not xs:
        return np.empty(0), np.empty(0)
    return np.concatenate(xs), np.concatenate(ys)


def tokens_key(run: RunSeries) -> str | None:
    return next((k for k in TOKEN_KEYS if run.point_count(k)), None)


def why_not(run: RunSeries | None, axis: str) -> str:
    """Why `axis` cannot be drawn for `run` ("" when it can)."""
    if axis == "tokens" and (run is None or tokens_key(run) is None):
        return NO_TOKENS
    if axis == "wall" and run is not None and not any(s.size for s in run.clock.values()):
        return NO_CLOCK
    return ""


def x_map(run: RunSeries, axis: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function from global steps to `axis` (None: the step itself, or an axis the run
    cannot be drawn by). Steps between two known ones are interpolated; outside them the
    nearest known value is used."""
    if axis == "step" or why_not(run, axis):
        return None
    if axis == "wall":
        steps, values = _global(run, run.clock)
        values = (values - values.min()) / 60.0  # minutes since the first recorded step
    else:
        steps, values = _tokens(run, run.series.get(tokens_key(run), {}))
        if not steps.size:
            return None

    def mapped(x: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(x, np.float64), steps, values)

    return mapped
