"""A run's metrics as CSV (stage, step, key, value, time): what `stagelab export` and the
monitor's export write."""

from __future__ import annotations

import csv
from typing import TextIO

from engine.store.db import Store
from engine.store.metrics import export_metrics_rows


def write_metrics_csv(store: Store, run_id: str, fh: TextIO) -> int:
    """Write every stored point of a run; returns how many."""
    writer = csv.writer(fh)
    writer.writerow(["stage", "step", "key", "value", "time"])
    count = 0
    for stage, step, key, value, wall_ms in export_metrics_rows(store, run_id):
        writer.writerow([stage, step, key, repr(float(value)), f"{wall_ms / 1000:.3f}"])
        count += 1
    return count
