"""One metric's points in one stage as growing numpy arrays (`Series`): appends amortised
O(1), a back-filled history kept without a copy, truncation after a resume. Qt-free."""

from __future__ import annotations

from typing import Any

import numpy as np

CHUNK = 4096  # growth step of a series' arrays


def _grown(array: np.ndarray, used: int, capacity: int) -> np.ndarray:
    out = np.empty(capacity, dtype=np.float64)
    out[:used] = array[:used]
    return out


class Series:
    """Steps and values of one metric in one stage, growing by appends (amortised O(1))."""

    def __init__(self) -> None:
        self._steps = np.empty(0, dtype=np.float64)
        self._values = np.empty(0, dtype=np.float64)
        self.size = 0
        self._owned = True  # False while holding arrays handed in (never written to)
        self.truncations = 0  # a reader holding points must re-read after a truncation

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.size]

    @property
    def values(self) -> np.ndarray:
        return self._values[: self.size]

    def extend(self, steps: Any, values: Any) -> None:
        steps, values = np.asarray(steps, np.float64), np.asarray(values, np.float64)
        if self.size == 0 and len(steps) >= CHUNK and steps.base is None and values.base is None:
            # A back-filled history arrives whole: keep its arrays (never written in place;
            # the next extend reallocates) instead of copying megabytes. Views are copied:
            # their owner may write to them.
            self._steps, self._values, self.size = steps, values, len(steps)
            self._owned = False
            return
        need = self.size + len(steps)
        if need > len(self._steps) or not self._owned:
            # np.resize would fill the new room by repeating the data: twice the work.
            capacity = max(need, 2 * len(self._steps), CHUNK)
            self._steps = _grown(self._steps, self.size, capacity)
            self._values = _grown(self._values, self.size, capacity)
            self._owned = True
        self._steps[self.size : need] = steps
        self._values[self.size : need] = values
        self.size = need

    def truncate_after(self, step: int) -> int:
        """Drop points after `step` (a resumed run retrains them); returns how many."""
        keep = int(np.searchsorted(self.steps, step, side="right"))
        dropped, self.size = self.size - keep, keep
        self.truncations += bool(dropped)
        return dropped
