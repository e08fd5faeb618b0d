"""Level-of-detail for long curves: min/max of blocks of 8, 64, 512 … points, kept up to
date as points arrive. A view of any width is then drawn from a few thousand (min, max)
pairs read off the right level, so redrawing a 10-million-point series costs about the same
as a 10-thousand-point one, and no spike is ever averaged away."""

from __future__ import annotations

import numpy as np

FANOUT = 8


class PeakLevels:
    """Min/max pyramid over (x, y) arrays that only grow at the end (or are rebuilt)."""

    def __init__(self) -> None:
        # Per level: x of each block's first and last point, and the block's min and max.
        self.levels: list[dict[str, np.ndarray]] = []
        self.x = np.empty(0)
        self.y = np.empty(0)

    def update(self, x: np.ndarray, y: np.ndarray, grown: bool = False) -> None:
        """Follow new arrays; when they only `grown` at the end, only the new complete
        blocks are computed."""
        self.x, self.y = x, y
        if not grown:
            self.levels = []
        size, below = FANOUT, None
        level = 0
        while len(x) // size:
            blocks = len(x) // size
            if level == len(self.levels):
                self.levels.append(_empty())
            done = len(self.levels[level]["lo"])
            if blocks > done:
                self.levels[level] = _extend(self.levels[level], below, x, y, done, blocks)
            below = self.levels[level]
            size *= FANOUT
            level += 1

    def view(self, x_lo: float, x_hi: float, target: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """Points to draw for x in [x_lo, x_hi]: raw points if few, else each block's min
        and max from the coarsest level that still gives about `target` blocks."""
        x, y = self.x, self.y
        i0 = max(int(np.searchsorted(x, x_lo, side="left")) - 1, 0)
        i1 = min(int(np.searchsorted(x, x_hi, side="right")) + 1, len(x))
        count = i1 - i0
        if count <= 2 * target:
            return x[i0:i1], y[i0:i1]
        level, size = -1, 1
        while level + 1 < len(self.levels) and size * FANOUT * target <= count:
            level, size = level + 1, size * FANOUT
        if level < 0:
            return x[i0:i1], y[i0:i1]
        blocks = self.levels[level]
        b0, b1 = i0 // size, min(i1 // size, len(blocks["lo"]))
        xs = np.empty(2 * (b1 - b0))
        ys = np.empty(2 * (b1 - b0))
        xs[0::2], xs[1::2] = blocks["x0"][b0:b1], blocks["x1"][b0:b1]
        ys[0::2], ys[1::2] = blocks["lo"][b0:b1], blocks["hi"][b0:b1]
        tail = max(b1 * size, i0)
        if tail < i1:  # the points after the last complete block, as they are
            xs, ys = np.concatenate((xs, x[tail:i1])), np.concatenate((ys, y[tail:i1]))
        return xs, ys


def _empty() -> dict[str, np.ndarray]:
    return {name: np.empty(0) for name in ("x0", "x1", "lo", "hi")}


def _extend(
    level: dict[str, np.ndarray],
    below: dict[str, np.ndarray] | None,
    x: np.ndarray,
    y: np.ndarray,
    done: int,
    blocks: int,
) -> dict[str, np.ndarray]:
    """Blocks done..blocks-1 of a level, from the level below (or the raw points)."""
    if below is None:
        part_lo = part_hi = y[done * FANOUT : blocks * FANOUT].reshape(-1, FANOUT)
        part_x0 = part_x1 = x[done * FANOUT : blocks * FANOUT].reshape(-1, FANOUT)
    else:
        sl = slice(done * FANOUT, blocks * FANOUT)
        part_lo = below["lo"][sl].reshape(-1, FANOUT)
        part_hi = below["hi"][sl].reshape(-1, FANOUT)
        part_x0 = below["x0"][sl].reshape(-1, FANOUT)
        part_x1 = below["x1"][sl].reshape(-1, FANOUT)
    # NaNs mark stage boundaries; a block keeps the finite extremes around one.
    with np.errstate(all="ignore"):
        lo = np.fmin.reduce(part_lo, axis=1)
        hi = np.fmax.reduce(part_hi, axis=1)
    return {
        "x0": np.concatenate((level["x0"], part_x0[:, 0])),
        "x1": np.concatenate((level["x1"], part_x1[:, -1])),
        "lo": np.concatenate((level["lo"], lo)),
        "hi": np.concatenate((level["hi"], hi)),
    }
