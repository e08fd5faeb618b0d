"""The texts an export is checked on: the stage's evaluation rows (its test rows, else
its training rows, when it holds none out), read with the split the stage used; a few
demo texts when the stage's data cannot be read any more."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from engine.export.request import EvalRows

DEMO = [
    "a great day with good friends",
    "the worst item I ever bought",
    "it arrived on time and works",
    "nothing special, rather dull",
]
MAX_ROWS = 64


def check_texts(rows: EvalRows | None) -> tuple[list[str], str]:
    """Up to MAX_ROWS texts and what they are, in words ('32 eval rows of stage x')."""
    if rows is None:
        return DEMO, f"{len(DEMO)} demo rows"
    try:
        texts, split = _stage_texts(rows)
    except Exception as exc:  # noqa: BLE001 — any failure falls back, said in the figure
        return DEMO, f"{len(DEMO)} demo rows (the stage's data could not be read: {exc})"
    if not texts:
        return DEMO, f"{len(DEMO)} demo rows (the stage has no rows to check on)"
    return texts, f"{len(texts)} {split} rows of stage '{rows.stage}'"


def _stage_texts(rows: EvalRows) -> tuple[list[str], str]:
    from engine.data.load import load_stage_data
    from engine.spec import load_plan_text
    from engine.spec.lineage import objective_of

    plan = load_plan_text(rows.plan_text, plan_dir=rows.plan_dir)
    stage = next(s for s in plan.stages if s.name == rows.stage)
    source: Any = getattr(stage, "data", None)
    if rows.member:
        member = next(m for m in getattr(stage, "members", []) if m.name == rows.member)
        source = getattr(member, "data", source)
    objective = objective_of(stage)
    if rows.member:
        objective = getattr(member, "task", None) or "sequence_classification"
    if source is None:
        return [], ""
    supervised = objective not in ("masked_lm", "causal_lm")
    with tempfile.TemporaryDirectory() as scratch:
        cache = rows.cache_dir or Path(scratch)
        data = load_stage_data(
            source,
            rows.plan_dir,
            cache / "datasets",
            seed=stage.seed,
            supervised=supervised,
            objective=objective,
        )
    for split, table in (("eval", data.eval), ("test", data.test), ("training", data.train)):
        if table is not None and len(table):
            column = source.text_column if source.text_column in table.column_names else None
            if column is None:
                return [], ""
            values = table[column][:MAX_ROWS]
            return [" ".join(v) if isinstance(v, list) else str(v) for v in values], split
    return [], ""
