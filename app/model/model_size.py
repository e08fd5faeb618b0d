"""The size of a stage's model as the engine records it (`model/parameters`, and
`model/parameters_before` of a grow stage, `teacher/parameters` of a distill stage), in
words for the monitor's stage rows. Qt-free."""

from __future__ import annotations

from typing import Any


def parameters_text(count: float) -> str:
    """'950 k', '1.3 M', '110 M' parameters."""
    if count >= 1e9:
        return f"{count / 1e9:.3g} B"
    if count >= 1e6:
        return f"{count / 1e6:.3g} M"
    if count >= 1e3:
        return f"{count / 1e3:.3g} k"
    return f"{count:.0f}"


def _first(run: Any, key: str, stage: int) -> float | None:
    series = run.series.get(key, {}).get(stage)
    if series is None or not series.size:
        return None
    return float(series.values[0])


def stage_size_text(run: Any, stage: int) -> str:
    """'0.55 M → 0.95 M parameters' after a grow, 'student 0.6 M ← teacher 3.2 M parameters'
    in a distillation, '' when the engine recorded no size for the stage.

    Args:
        run: the monitor's `RunSeries` (series by key, then by stage).
        stage: the stage's index.
    """
    after = _first(run, "model/parameters", stage)
    if after is None:
        return ""
    before = _first(run, "model/parameters_before", stage)
    if before is not None:
        return f"{parameters_text(before)} → {parameters_text(after)} parameters"
    teacher = _first(run, "teacher/parameters", stage)
    if teacher is not None:
        return f"student {parameters_text(after)} ← teacher {parameters_text(teacher)} parameters"
    return f"{parameters_text(after)} parameters"
