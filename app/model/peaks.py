"""Level-of-detail for long curves: min/max of blocks of 8, 64, 512 … points, kept up to
date as points arrive. A view of any width is then drawn from a few thousand (min, max)
pairs read off the right level, so redrawing a 10-million-point series costs about the same
as a 10-thousand-point one, and no spike is ever averaged away."""

from __future__ import annotations

import numpy as np

from app.model.series import Series

FANOUT = 8


class PeakLevels:
    """Min/max pyramid over (x, y) arrays that only grow at the end (or are rebuilt)."""

    def __init__(self) -> None:
        # Per level: (x of each block's first point, block minimum) and (x of its last
        # point, block maximum), in arrays that grow in place.
        self.levels: list[tuple[Series, Series]] = []
        self.x = np.empty(0)
        self.y = np.empty(0)

    def update(self, x: np.ndarray, y: np.ndarray, grown: bool = False) -> None:
        """Follow new arrays; when they only `grown` at the end, only the new complete
        blocks are computed."""
        self.x, self.y = x, y
        if not grown:
            self.levels = []
        size, level = FANOUT, 0
        while len(x) // size:
            blocks = len(x) // size
            if level == len(self.levels):
                self.levels.append((Series(), Series()))
            lows, highs = self.levels[level]
            if blocks > lows.size:
                if level == 0:
                    part = slice(lows.size * FANOUT, blocks * FANOUT)
                    x0 = x1 = x[part].reshape(-1, FANOUT)
                    lo = hi = y[part].reshape(-1, FANOUT)
                else:
                    below_lo, below_hi = self.levels[level - 1]
                    part = slice(lows.size * FANOUT, blocks * FANOUT)
                    x0, lo = (
                        below_lo.steps[part].reshape(-1, FANOUT),
                        below_lo.values[part].reshape(-1, FANOUT),
                    )
                    x1, hi = (
                        below_hi.steps[part].reshape(-1, FANOUT),
                        below_hi.values[part].reshape(-1, FANOUT),
                    )
                # NaNs mark stage boundaries; a block keeps the finite extremes around one.
                with np.errstate(all="ignore"):
                    lows.extend(x0[:, 0], np.fmin.reduce(lo, axis=1))
                    highs.extend(x1[:, -1], np.fmax.reduce(hi, axis=1))
            size *= FANOUT
            level += 1

    def view(self, x_lo: float, x_hi: float, target: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """Points to draw for x in [x_lo, x_hi]: raw points if few, else each block's min
        and max from the coarsest level that still gives about `target` blocks."""
        x, y = self.x, self.y
        i0 = max(int(np.searchsorted(x, x_lo, side="left")) - 1, 0)
        i1 = min(int(np.searchsorted(x, x_hi, side="right")) + 1, len(x))
        count = i1 - i0
        level, size = -1, 1
        while level + 1 < len(self.levels) and size * FANOUT * target <= count:
            level, size = level + 1, size * FANOUT
        if level < 0:
            return x[i0:i1], y[i0:i1]
        lows, highs = self.levels[level]
        b0, b1 = i0 // size, min(i1 // size, lows.size)
        xs = np.empty(2 * (b1 - b0))
        ys = np.empty(2 * (b1 - b0))
        xs[0::2], xs[1::2] = lows.steps[b0:b1], highs.steps[b0:b1]
        ys[0::2], ys[1::2] = lows.values[b0:b1], highs.values[b0:b1]
        tail = max(b1 * size, i0)
        if tail < i1:  # the points after the last complete block, as they are
            xs, ys = np.concatenate((xs, x[tail:i1])), np.concatenate((ys, y[tail:i1]))
        return xs, ys
