"""The browser's "best eval" names the stage its value is of (the last stage that
evaluates: earlier stages are other tasks)."""

from __future__ import annotations

from app.model.browser_rows import best_text
from engine.store import browse
from tests.reused_runs import reused_runs


def test_best_eval_says_which_stage(tmp_path):
    runs = reused_runs(tmp_path / "ws")
    row = next(r for r in browse.browse_runs(runs.store) if r.id == runs.source)
    # Both stages evaluate accuracy; the best is the later stage's (cls, 20 steps).
    assert (row.best_stage, row.best_stage_name) == (1, "cls")
    assert best_text(row) == "accuracy 0.700 (cls)"
