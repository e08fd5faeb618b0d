"""One series drawn over the global step of a whole run (`Curve`): x/y and smoothed y grown
by the new points only, NaN/±inf points noted as bands, a break at each stage boundary;
smoothed with the debiased exponential moving average (app/model/smoothing.py). Qt-free."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from app.model.series import Series
from app.model.smoothing import ema  # the monitor's smoothing, re-exported for callers

if TYPE_CHECKING:
    from app.model.run_series import RunSeries

ODD_NAMES = ((0.0, "NaN"), (1.0, "+inf"), (-1.0, "-inf"))


class Curve:
    """One series drawn over the global step of the whole run: its x/y (and smoothed y)
    arrays kept between redraws and grown by the new points only, so a redraw of a live
    10-million-point curve costs what arrived since the last one, not the whole history.
    Between stages y holds a NaN so the line breaks at each boundary (x stays sorted, which
    keeps the plot's clip-to-view a binary search)."""

    def __init__(self, key: str, weight: float = 0.0, part: str = "all"):
        """`part`: "all" stages, only the stages this run "trained", or only the "reused"
        ones (compare draws those dashed)."""
        self.key, self.weight, self.part = key, weight, part
        self.raw, self.smooth = Series(), Series()  # steps: global x; values: y
        # Points whose value is NaN or ±inf: drawn as marked bands, never as a line. steps:
        # global x; values: their index in `raw` (runs of consecutive indices form a band).
        self.odd, self.odd_kind = Series(), Series()  # kind: 0 NaN, 1 +inf, -1 -inf
        # stage -> (points taken, the stage's offset, its series' truncation count)
        self.taken: dict[int, tuple[int, int, int]] = {}
        self._ema = (0.0, 0)  # EMA state and its step count in the current segment

    def _grows_at_end(self, run: RunSeries, per: dict[int, Series], weight: float) -> bool:
        """Whether the run only added points to the last stage drawn or added later stages
        (anything else, such as a truncation after resume, redraws the whole curve)."""
        known = sorted(self.taken)
        if weight != self.weight or known != sorted(per)[: len(known)]:
            return False
        for i in known:
            size, offset, truncations = self.taken[i]
            grown = per[i].size >= size if i == known[-1] else per[i].size == size
            if not grown or run.offset(i) != offset or per[i].truncations != truncations:
                return False
        return True

    def sync(self, run: RunSeries, weight: float) -> str:
        """Bring the arrays up to date with the run: "" if nothing changed, "grown" if
        points were only added at the end, else "rebuilt"."""
        per = {
            i: s
            for i, s in run.series.get(self.key, {}).items()
            if s.size and (self.part == "all" or run.is_reused(i) == (self.part == "reused"))
        }
        rebuilt = not self._grows_at_end(run, per, weight)
        if rebuilt:
            self.__init__(self.key, weight, self.part)
        changed = rebuilt
        for idx in sorted(per):
            series, offset = per[idx], run.offset(idx)
            done = self.taken.get(idx, (0,))[0]
            if done == series.size:
                continue
            x, y = series.steps[done:] + offset, series.values[done:]
            if done == 0 and self.raw.size:  # a new stage: break the line
                x, y = np.concatenate(([x[0]], x)), np.concatenate(([np.nan], y))
                y[1:] = self._take_odd(x[1:], y[1:], self.raw.size + 1)
            else:
                y = self._take_odd(x, y, self.raw.size)
            self.raw.extend(x, y)
            if self.weight > 0:
                smoothed, self._ema = ema(y, self.weight, *self._ema)
                self.smooth.extend(x, smoothed)
            self.taken[idx] = (series.size, offset, series.truncations)
            changed = True
        return "rebuilt" if rebuilt else "grown" if changed else ""

    def _take_odd(self, x: np.ndarray, y: np.ndarray, first: int) -> np.ndarray:
        """Note the non-finite values among new points; returns y with NaN in their place
        (the line breaks there, and ±inf would wreck the y range and the smoothing)."""
        odd = ~np.isfinite(y)
        if not odd.any():
            return y
        where = np.flatnonzero(odd)
        self.odd.extend(x[where], where + first)
        self.odd_kind.extend(x[where], np.where(np.isnan(y[where]), 0.0, np.sign(y[where])))
        return np.where(odd, np.nan, y)

    def odd_bands(self, limit: int = 100) -> list[tuple[float, float, str]]:
        """(first x, last x, label) of each run of consecutive non-finite points, e.g.
        (1200, 1500, "NaN") for a loss that diverged at step 1200; at most `limit` bands
        (the closest ones merged)."""
        if not self.odd.size:
            return []
        index = self.odd.values
        starts = np.flatnonzero(np.diff(index, prepend=-2) != 1)
        ends = np.append(starts[1:], len(index)) - 1
        if len(starts) > limit:  # keep the widest gaps between bands, merge the rest
            gaps = self.odd.steps[starts[1:]] - self.odd.steps[ends[:-1]]
            cut = np.sort(np.argsort(gaps)[-(limit - 1) :]) if limit > 1 else np.empty(0, int)
            starts = np.concatenate(([starts[0]], starts[1:][cut]))
            ends = np.append(ends[:-1][cut], ends[-1])
        bands = []
        kinds = self.odd_kind.values
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            seen = set(kinds[a : b + 1].tolist())
            label = "/".join(name for code, name in ODD_NAMES if code in seen)
            bands.append((float(self.odd.steps[a]), float(self.odd.steps[b]), label))
        return bands

    def arrays(self, smoothed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """x (global step) and y of the curve."""
        series = self.smooth if smoothed and self.weight > 0 else self.raw
        return series.steps, series.values
