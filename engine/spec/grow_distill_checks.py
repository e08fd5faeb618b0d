"""Checks of `grow` and `distill` stages that need the whole plan: families whose layers
can be copied, depths, and teacher/student label sets (their vocabularies:
`engine.spec.tokenizer_checks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.builtins import SIZES
from engine.spec.growable import config_layers, grow_refusal
from engine.spec.labels import data_labels
from engine.spec.lineage import objective_of, root_architecture, root_layers
from engine.spec.model_config import root_source, source_config
from engine.spec.problems import Problem
from engine.spec.stages import StageBase
from engine.spec.tokenizer_checks import check_distill_vocabulary


def _cut_or_grow_refusal(
    stages: list[StageBase | None], i: int, plan_dir: Path | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The config.json of the folder or cached Hub id stage i's model started from
    (through from_stage), and why its layers cannot be copied (None if they can or the
    family is unknown before the run)."""
    config = source_config(root_source(stages, stages[i].model), plan_dir)  # type: ignore[union-attr]
    family = root_architecture(stages, i) or (config or {}).get("model_type")
    return config, grow_refusal(family, config) if isinstance(family, str) else None


def check_grow(
    stages: list[StageBase | None], i: int, stage: Any, plan_dir: Path | None
) -> list[Problem]:
    p = f"stages[{i}]"
    problems = []
    config, why = _cut_or_grow_refusal(stages, i, plan_dir)
    if why is not None:
        problems.append(Problem(f"{p}.model", f"grow cannot deepen this model: {why}"))
    source = stage.model
    if source.from_stage and source.from_stage in [s.name for s in stages if s]:
        before = root_layers(
            stages, [s.name if s else None for s in stages].index(source.from_stage)
        )
    elif source.builtin:
        before = SIZES[source.builtin.partition("-")[2]].layers
    else:
        before = None
    if before is None and config:  # a folder's model, with no grow or cut on the way
        before = config_layers(config)
    if before is not None and stage.target_layers <= before:
        problems.append(
            Problem(
                f"{p}.target_layers",
                f"the model has {before} layers already; grow to more than {before}",
            )
        )
    return problems


def check_distill(
    stages: list[StageBase | None], i: int, stage: Any, plan_dir: Path | None
) -> list[Problem]:
    p = f"stages[{i}]"
    problems = []
    names = [s.name if s else None for s in stages]
    teacher_stage = None
    if stage.teacher.from_stage in names and names.index(stage.teacher.from_stage) < i:
        teacher_stage = stages[names.index(stage.teacher.from_stage)]
    classification = ("sequence_classification", "token_classification")
    if stage.teacher.builtin:
        problems.append(
            Problem(
                f"{p}.teacher",
                "a teacher must be trained already; name an earlier stage (from_stage), a "
                "model folder or a Hub id",
            )
        )
    if teacher_stage is not None and teacher_stage.kind == "joint":
        # A joint stage's member teaches: its task and its data's labels.
        teacher_stage = next(
            (m for m in teacher_stage.members if m.name == stage.teacher.member), None
        )
    if teacher_stage is not None:
        taught = getattr(teacher_stage, "task", None) or objective_of(teacher_stage)
        if stage.task in classification and taught != stage.task:
            problems.append(
                Problem(
                    f"{p}.task",
                    f"the teacher (stage '{teacher_stage.name}') was trained for "
                    f"{taught.replace('_', ' ')}; distilling {stage.task.replace('_', ' ')} "
                    "needs a teacher with that head",
                )
            )
        elif stage.alpha > 0 and stage.task in classification:
            theirs, ours = data_labels(teacher_stage, plan_dir), data_labels(stage, plan_dir)
            if theirs is not None and ours is not None and not ours <= theirs:
                extra = ", ".join(sorted(ours - theirs)[:5])
                problems.append(
                    Problem(
                        f"{p}.data",
                        f"the data has labels the teacher (stage '{teacher_stage.name}') "
                        f"does not know: {extra}; teacher and student need one label set",
                    )
                )
    problems += check_distill_vocabulary(stages, i, stage, plan_dir)
    if stage.alpha == 0 and stage.task == "token_classification":
        problems.append(
            Problem(
                f"{p}.alpha",
                "token classification needs tagged words to align word pieces; use "
                "alpha above 0 with tagged data",
            )
        )
    if stage.student_layers:
        config, why = _cut_or_grow_refusal(stages, i, plan_dir)
        if why is not None:
            problems.append(
                Problem(f"{p}.student_layers", f"student_layers cannot cut this model: {why}")
            )
        layers = _student_layers_before(stages, i)
        if layers is None and config:  # a folder's model, with no grow or cut on the way
            layers = config_layers(config)
        if layers is not None and stage.student_layers > layers:
            problems.append(
                Problem(
                    f"{p}.student_layers",
                    f"the student model has only {layers} layers (got {stage.student_layers})",
                )
            )
    return problems


def _student_layers_before(stages: list[StageBase | None], i: int) -> int | None:
    """Layers of a distill stage's student model before `student_layers` cuts it."""
    source = stages[i].model  # type: ignore[union-attr]
    if source.builtin:
        return SIZES[source.builtin.partition("-")[2]].layers
    names = [s.name if s else None for s in stages]
    if source.from_stage in names:
        return root_layers(stages, names.index(source.from_stage))
    return None
