"""The stage kinds offered in the palette, and the settings a newly dropped stage starts
with. Qt-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.spec import RUNNABLE_KINDS, STAGE_CLASSES
from engine.spec.builtins import SIZES


@dataclass(frozen=True)
class StageKind:
    """One entry of the palette."""

    kind: str
    title: str
    summary: str
    color: str  # card and icon colour
    glyph: str  # letter drawn on the icon
    runnable: bool


_LOOK = {
    "pretrain": ("Pretrain", "#3b7dd8", "P"),
    "train": ("Train", "#2e9d6a", "T"),
    "distill": ("Distill", "#a35dc9", "D"),
    "joint": ("Joint", "#d8843b", "J"),
    "ensemble": ("Ensemble", "#c9475d", "E"),
    "grow": ("Grow", "#7a8a2e", "G"),
    "preference": ("Preference", "#2f8f9d", "A"),  # A: alignment (P is pretrain's)
    "merge": ("Merge", "#5d6fc9", "M"),
}


def stage_kinds() -> list[StageKind]:
    """Every stage kind of the plan format, runnable ones first."""
    kinds = []
    for kind, cls in STAGE_CLASSES.items():
        title, color, glyph = _LOOK[kind]
        summary = (cls.__doc__ or "").strip().splitlines()[0].rstrip(".")
        kinds.append(StageKind(kind, title, summary, color, glyph, kind in RUNNABLE_KINDS))
    return sorted(kinds, key=lambda k: not k.runnable)


def kind_info(kind: str) -> StageKind | None:
    """Palette entry of a kind (None for an unknown kind)."""
    return next((k for k in stage_kinds() if k.kind == kind), None)


def unique_name(base: str, taken: list[str]) -> str:
    """`base`, or `base-2`, `base-3` … whichever is not taken."""
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def new_stage(
    kind: str,
    names_before: list[str],
    all_names: list[str],
    stages_before: list[Any] | None = None,
) -> dict[str, Any]:
    """Settings of a stage of `kind` dropped after the stages `names_before` (whose
    settings, when given as `stages_before`, shape a distillation's student).

    A stage starts from the output of the stage before it when there is one (the usual
    multi-stage chain), otherwise from a built-in tiny BERT. Data is left for the person
    to choose: the problems list says so.
    """
    previous = names_before[-1] if names_before else None
    start = {"from_stage": previous} if previous else {"builtin": "bert-tiny"}
    stage: dict[str, Any] = {"name": unique_name(kind, all_names), "kind": kind}
    if kind == "pretrain":
        stage.update(objective="masked_lm", model=start)
    elif kind == "train":
        stage.update(task="sequence_classification", model=start)
    elif kind == "distill":
        teacher = {"from_stage": previous} if previous else {"hub": ""}
        stage.update(teacher=teacher, model={"builtin": "bert-tiny"})
        stage.update(_smaller_student(stages_before or [], previous))
    elif kind == "joint":
        # Multi-task on one encoder: two classifying heads, their data left to choose.
        members = [{"name": n, "task": "sequence_classification"} for n in ("task-a", "task-b")]
        stage.update(coupling="shared_backbone", model=start, members=members)
    elif kind == "ensemble":
        stage.update(members=[{"from_stage": n} for n in names_before[-2:]])
    elif kind == "merge":
        stage.update(members=[{"from_stage": n} for n in names_before[-2:]], method="average")
    elif kind == "preference":
        # Alignment follows fine-tuning of a causal LM; alone it starts from a tiny GPT-2.
        stage.update(loss="dpo", model=start if previous else {"builtin": "gpt2-tiny"})
    elif kind == "grow":
        stage.update(model=start, target_layers=4)
    return stage


def _smaller_student(stages: list[Any], teacher: str | None) -> dict[str, Any]:
    """A student half as deep as a teacher of known depth, starting from the teacher's
    lower layers and learning its task (a fresh bert-tiny would be as large as a tiny
    teacher); nothing when the teacher's depth is not known here (a Hub model)."""
    by_name = {s.get("name"): s for s in stages if isinstance(s, dict)}
    stage, layers, hops = by_name.get(teacher), None, 0
    while isinstance(stage, dict) and layers is None and hops <= len(stages):
        hops += 1
        model = stage.get("model") if isinstance(stage.get("model"), dict) else {}
        if stage.get("kind") == "grow" and isinstance(stage.get("target_layers"), int):
            layers = stage["target_layers"]
        elif stage.get("kind") == "distill" and isinstance(stage.get("student_layers"), int):
            layers = stage["student_layers"]
        elif isinstance(model.get("builtin"), str):
            shape = SIZES.get(model["builtin"].partition("-")[2])
            layers = shape.layers if shape else None
        else:
            stage = by_name.get(model.get("from_stage"))
    if not layers or layers < 2:
        return {}
    source = by_name[teacher]
    task = source.get("task") or source.get("objective")
    out: dict[str, Any] = {"model": {"from_stage": teacher}, "student_layers": layers // 2}
    if task in ("sequence_classification", "token_classification", "causal_lm_sft",
                "masked_lm", "causal_lm"):  # fmt: skip
        out["task"] = task
    return out
