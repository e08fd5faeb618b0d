"""Checks of a stage's sample outputs (`eval.samples`): which stages record them and
what they need."""

from __future__ import annotations

from typing import Any

from engine.spec.problems import Problem

# Stages that record no samples: a joint stage has several models (a sample per member
# would need its own inputs), an ensemble scores once and has no evaluations to follow.
NO_SAMPLES = {"joint": "a joint stage", "ensemble": "an ensemble", "merge": "a merge stage"}


def check_samples(stage: Any, p: str) -> list[Problem]:
    """Problems of one stage's `eval.samples` (none when it is left out)."""
    samples = stage.eval.samples
    if samples is None:
        return []
    where = f"{p}.eval.samples"
    if stage.kind in NO_SAMPLES:
        return [
            Problem(
                where,
                f"{NO_SAMPLES[stage.kind]} records no sample outputs; remove eval.samples "
                "(set it on a stage with one model)",
            )
        ]
    data = getattr(stage, "data", None)
    if data is not None and data.eval_split is None and data.eval_ratio == 0:
        return [
            Problem(
                where,
                "samples are taken at evaluations, which need eval rows: set "
                "data.eval_ratio above 0 or name an eval_split",
            )
        ]
    return []
