"""Smoothing of a curve: the debiased exponential moving average TensorBoard draws
(`ema`), vectorised in blocks, continued across appends, restarted at a NaN (a stage
boundary). Qt-free; the monitor, Compare and the panel exports all use it."""

from __future__ import annotations

import math

import numpy as np


def ema(
    values: np.ndarray, weight: float, state: float = 0.0, count: int = 0
) -> tuple[np.ndarray, tuple[float, int]]:
    """Debiased exponential moving average (TensorBoard's smoothing), vectorised in blocks
    so a million points take milliseconds. A NaN (a stage boundary) restarts it. Continues
    from (state, count) and returns the state to continue from."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    if weight <= 0:
        return values.copy(), (state, count)
    gaps = np.flatnonzero(np.isnan(values))
    start = 0
    for end in [*gaps.tolist(), len(values)]:
        if end > start:
            out[start:end], state, count = _ema_segment(values[start:end], weight, state, count)
        if end < len(values):
            out[end] = np.nan
            state, count = 0.0, 0
        start = end + 1
    return out, (state, count)


def smoothed(values: np.ndarray, weight: float) -> np.ndarray:
    """The whole series smoothed from its first point (an export, Compare)."""
    return ema(values, weight)[0]


def _ema_segment(
    x: np.ndarray, a: float, state: float, count: int
) -> tuple[np.ndarray, float, int]:
    # y_t = a*y_{t-1} + (1-a)*x_t, solved in closed form per block: a^-k stays below 1e150.
    block = max(1, min(len(x), int(150 * math.log(10) / -math.log(a))))
    raw = np.empty_like(x)
    for lo in range(0, len(x), block):
        chunk = x[lo : lo + block]
        powers = a ** np.arange(1, len(chunk) + 1, dtype=np.float64)
        raw[lo : lo + len(chunk)] = powers * (state + np.cumsum((1 - a) * chunk / powers))
        state = raw[lo + len(chunk) - 1]
    # Debias: the average starts from 0, so the t-th value is scaled by 1 - a^t.
    t = np.arange(count + 1, count + len(x) + 1, dtype=np.float64)
    return raw / (1 - a**t), float(state), count + len(x)
