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
    powers = a ** np.arange(1, block + 1, dtype=np.float64)  # the same for every block
    raw = np.empty_like(x)
    for lo in range(0, len(x), block):
        chunk = x[lo : lo + block]
        p = powers[: len(chunk)]
        raw[lo : lo + len(chunk)] = p * (state + np.cumsum((1 - a) * chunk / p))
        state = raw[lo + len(chunk) - 1]
    # Debias: the average starts from 0, so the t-th value is scaled by 1 - a^t; past the
    # first few hundred steps a^t is below double precision and the scale is exactly 1.
    settled = math.ceil(math.log(1e-18) / math.log(a)) if a > 0 else 1
    head = max(0, min(len(x), settled - count))
    if head:
        t = np.arange(count + 1, count + head + 1, dtype=np.float64)
        raw[:head] /= 1 - a**t
    return raw, float(state), count + len(x)
