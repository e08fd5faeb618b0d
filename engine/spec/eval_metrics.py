"""The eval metrics a stage records when its plan lists none (`eval.metrics` left out):
they follow the stage's task, so a classifier reports accuracy without being asked.

The defaults are applied where a stage is validated (`engine.spec.stages`), so the engine,
the validator (early stopping, sweep objectives), the inspector and the sweep form all see
the same list; `plan_to_data` leaves them out again, so a plan round-trips as written.
Raw stage data (the window's plan document) gets the same answer from `raw_eval_metrics`.
"""

from __future__ import annotations

from typing import Any

# Defaults by the kind of head a stage evaluates.
CLASSIFICATION_DEFAULT = ("loss", "accuracy", "f1", "confusion_matrix")
REGRESSION_DEFAULT = ("loss", "mae", "rmse", "pearson")
LANGUAGE_MODEL_DEFAULT = ("loss", "perplexity", "accuracy")
# A preference stage's accuracy is how often the chosen response wins.
PREFERENCE_DEFAULT = ("loss", "accuracy")

LANGUAGE_MODEL_OBJECTIVES = ("masked_lm", "causal_lm", "causal_lm_sft")


def objective_defaults(objective: str) -> list[str]:
    """The default metrics of one objective or task ('masked_lm', 'sequence_regression',
    'sequence_classification', 'preference', ...)."""
    if objective in LANGUAGE_MODEL_OBJECTIVES:
        return list(LANGUAGE_MODEL_DEFAULT)
    if objective == "preference":
        return list(PREFERENCE_DEFAULT)
    if objective == "sequence_regression":
        return list(REGRESSION_DEFAULT)
    return list(CLASSIFICATION_DEFAULT)


def default_eval_metrics(kind: str, objective: str | None, member_tasks: list[str]) -> list[str]:
    """The metrics a stage records when its plan names none.

    Args:
        kind: the stage kind.
        objective: its objective or task (None: the kind's default).
        member_tasks: a joint stage's members' tasks (each member takes those of the
            stage's metrics that apply to its task).

    Returns:
        The metric names, in the order the plan format lists them.
    """
    if kind == "preference":
        return objective_defaults("preference")
    if kind in ("ensemble", "merge"):
        return objective_defaults("sequence_classification")
    if kind == "joint":
        merged: list[str] = []
        for task in member_tasks or ["sequence_classification"]:
            merged += [m for m in objective_defaults(task) if m not in merged]
        return merged
    return objective_defaults(objective or _kind_default_objective(kind))


def _kind_default_objective(kind: str) -> str:
    from engine.spec.stages import STAGE_CLASSES

    cls = STAGE_CLASSES.get(kind)
    if cls is None:
        return "sequence_classification"
    for name in ("objective", "task"):
        field = cls.model_fields.get(name)
        if field is not None and isinstance(field.default, str):
            return field.default
    return "sequence_classification"


def raw_eval_metrics(stage: Any) -> list[str]:
    """The metrics a stage of raw plan data records: its `eval.metrics` when listed (an
    empty list too: nothing), else the defaults of its kind and task (what validation
    fills in)."""
    if not isinstance(stage, dict):
        return list(CLASSIFICATION_DEFAULT)
    evaluation = stage.get("eval")
    listed = evaluation.get("metrics") if isinstance(evaluation, dict) else None
    if isinstance(listed, list):
        return [m for m in listed if isinstance(m, str)]
    kind = stage.get("kind")
    objective = stage.get("objective") or stage.get("task")
    members = stage.get("members") if isinstance(stage.get("members"), list) else []
    tasks = [(m.get("task") or "sequence_classification") for m in members if isinstance(m, dict)]
    return default_eval_metrics(
        kind if isinstance(kind, str) else "",
        objective if isinstance(objective, str) else None,
        [t for t in tasks if isinstance(t, str)],
    )
