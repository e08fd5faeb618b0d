"""Which settings and which eval metrics apply to a stage: one table by stage kind and task,
read by the validator (a metric that does not apply is a problem) and by the inspector
(a setting that does not apply is not shown unless the plan sets it, so it can be cleared).

Works on raw stage data (the window's plan document: any value, even a wrong one) and on
validated stages (`stage.model_dump()` gives the same keys). Standard library only.

A setting is named by its keys, e.g. `("optimizer", "lr")`, `("data", "label_column")`,
`("mlm_probability",)`; a group's keys (`("optimizer",)`) name the whole group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.spec.settings import EVAL_METRICS

# -- metrics ---------------------------------------------------------------------------------

CLASSIFICATION = ("loss", "accuracy", "precision", "recall", "f1", "confusion_matrix")
REGRESSION = ("loss", "mae", "rmse", "pearson", "spearman")
LANGUAGE_MODEL = ("loss", "perplexity", "accuracy")
# A preference stage's loss is its DPO/SimPO loss, its accuracy how often chosen wins.
PREFERENCE = ("loss", "accuracy")

# The eval metrics a task can record (the defaults, engine.spec.eval_metrics, are a part
# of these and could be read from here too).
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "sequence_classification": CLASSIFICATION,
    "token_classification": CLASSIFICATION,
    "sequence_regression": REGRESSION,
    "masked_lm": LANGUAGE_MODEL,
    "causal_lm": LANGUAGE_MODEL,
    "causal_lm_sft": LANGUAGE_MODEL,
    "preference": PREFERENCE,
}

# -- settings by kind --------------------------------------------------------------------------

# An ensemble trains nothing: it scores its members once (engine.recipes.ensemble), in
# batches of batch_size, on rows held out with its seed. Nothing about steps, optimizers,
# schedules, noise, freezing, checkpoints or training batches reaches it.
_EVALUATION_ONLY = frozenset(
    {
        ("epochs",),
        ("max_steps",),
        ("grad_accum",),
        ("max_grad_norm",),
        ("precision",),
        ("compile",),
        ("kernels",),
        ("log_every_steps",),
        ("optimizer",),
        ("schedule",),
        ("regularization",),
        ("augmentation",),
        ("freezing",),
        ("checkpoint",),
        ("batching",),
        ("eval", "every_steps"),
        ("eval", "samples"),
    }
)
NOT_FOR_KIND: dict[str, frozenset[tuple[str, ...]]] = {
    "ensemble": _EVALUATION_ONLY,
    "merge": _EVALUATION_ONLY,
    # Sample outputs follow one model (engine.spec.sample_checks).
    "joint": frozenset({("eval", "samples")}),
    # Token noise would change only the chosen response (engine.spec.checks says so).
    "preference": frozenset({("augmentation",)}),
}

# Settings that only some tasks read (the data columns: engine.data.encode,
# engine.spec.rows.needed_columns).
ONLY_FOR_TASKS: dict[tuple[str, ...], frozenset[str]] = {
    ("mlm_probability",): frozenset({"masked_lm"}),
    # Rows pack for language modelling (engine.spec.packing_checks).
    ("packing",): frozenset({"masked_lm", "causal_lm", "causal_lm_sft", "preference"}),
    ("data", "text_column"): frozenset(
        {
            "masked_lm",
            "causal_lm",
            "causal_lm_sft",
            "sequence_classification",
            "sequence_regression",
            "token_classification",
        }
    ),
    ("data", "text_pair_column"): frozenset({"sequence_classification", "sequence_regression"}),
    ("data", "label_column"): frozenset(
        {"sequence_classification", "sequence_regression", "token_classification"}
    ),
    ("data", "labels"): frozenset({"sequence_classification", "token_classification"}),
    ("data", "prompt_column"): frozenset({"causal_lm_sft", "preference"}),
    ("data", "response_column"): frozenset({"causal_lm_sft"}),
    ("data", "messages_column"): frozenset({"causal_lm_sft"}),
    ("data", "chosen_column"): frozenset({"preference"}),
    ("data", "rejected_column"): frozenset({"preference"}),
    # Only a stage that generates its samples adds tokens to them.
    ("eval", "samples_max_new_tokens"): frozenset({"causal_lm", "causal_lm_sft", "preference"}),
}

# Settings that only mean something for one choice of another setting:
# keys -> (the choosing setting, its default, the choices where it applies).
APPLIES_WHEN: dict[tuple[str, ...], tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    ("optimizer", "betas"): (("optimizer", "name"), "adamw", ("adam", "adamw")),
    ("optimizer", "eps"): (("optimizer", "name"), "adamw", ("adam", "adamw")),
    ("optimizer", "momentum"): (("optimizer", "name"), "adamw", ("sgd",)),
    ("optimizer", "nesterov"): (("optimizer", "name"), "adamw", ("sgd",)),
    ("schedule", "cycles"): (("schedule", "name"), "linear", ("cosine_restarts",)),
    ("schedule", "step_size"): (("schedule", "name"), "linear", ("step",)),
    ("schedule", "gamma"): (("schedule", "name"), "linear", ("step",)),
    # joint stages
    ("sampling_temperature",): (("sampling",), "all", ("temperature",)),
    ("mutual_weight",): (("coupling",), "shared_backbone", ("mutual",)),
    ("mutual_temperature",): (("coupling",), "shared_backbone", ("mutual",)),
    # ensemble stages: vote counts labels, weighted learns its own weights
    ("weights",): (("combiner",), "average", ("average",)),
    # merge stages: density trims TIES's task vectors, scale weighs task vectors
    ("density",): (("method",), "average", ("ties",)),
    ("scale",): (("method",), "average", ("task_arithmetic", "ties")),
}

# The task of each kind when the plan leaves it out (the schema's defaults).
_TASK_FIELD = {"pretrain": "objective", "grow": "objective", "train": "task", "distill": "task"}
_DEFAULT_TASK = {
    "pretrain": "masked_lm",
    "grow": "masked_lm",
    "train": "sequence_classification",
    "distill": "sequence_classification",
    "preference": "preference",
    "ensemble": "sequence_classification",
    "merge": "sequence_classification",
    "joint": "joint",
}
# A distillation with alpha 0 reads no labels: its rows are text only.
_UNLABELLED = {"sequence_classification": "masked_lm"}


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def stage_task(stage: Mapping[str, Any]) -> str:
    """The task a raw stage trains or scores: its objective (pretrain, grow) or task (train,
    distill), 'preference', 'sequence_classification' for an ensemble, 'joint'."""
    kind = stage.get("kind")
    field = _TASK_FIELD.get(kind) if isinstance(kind, str) else None
    value = stage.get(field) if field else None
    if isinstance(value, str) and value in METRICS_BY_TASK:
        return value
    return _DEFAULT_TASK.get(kind, "sequence_classification") if isinstance(kind, str) else ""


def member_tasks(stage: Mapping[str, Any]) -> list[str]:
    """The tasks of a joint stage's members (classification where left out)."""
    members = stage.get("members")
    tasks = []
    for member in members if isinstance(members, list) else []:
        task = _dict(member).get("task", "sequence_classification")
        tasks.append(task if isinstance(task, str) else "sequence_classification")
    return tasks


def allowed_metrics(task: str, tasks_of_members: Iterable[str] = ()) -> tuple[str, ...]:
    """The eval metrics a task can record, in the plan format's order; a joint stage's are
    those of its members' tasks (each member takes the ones that fit its own)."""
    if task == "joint":
        names = {m for t in tasks_of_members or ["sequence_classification"] for m in _of(t)}
    else:
        names = set(_of(task))
    return tuple(m for m in EVAL_METRICS if m in names)


def _of(task: str) -> tuple[str, ...]:
    return METRICS_BY_TASK.get(task, CLASSIFICATION)


def stage_metrics(stage: Mapping[str, Any]) -> tuple[str, ...]:
    """The eval metrics that apply to a raw stage."""
    return allowed_metrics(stage_task(stage), member_tasks(stage))


def data_task(stage: Mapping[str, Any]) -> str:
    """The task as far as the rows a stage reads go (a distillation with alpha 0 reads text
    only)."""
    task = stage_task(stage)
    if stage.get("kind") == "distill" and stage.get("alpha") == 0:
        return _UNLABELLED.get(task, task)
    return task


def applies(stage: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    """Whether the setting at `keys` takes effect in this raw stage: its kind reads it,
    its task reads it, and the choice it depends on (optimizer, schedule, combiner, …) is
    one where it applies. A group's keys (`("optimizer",)`) ask for the whole group."""
    kind = stage.get("kind")
    skipped = NOT_FOR_KIND.get(kind, frozenset()) if isinstance(kind, str) else frozenset()
    if any(keys[:n] in skipped for n in range(1, len(keys) + 1)):
        return False
    tasks = ONLY_FOR_TASKS.get(keys)
    if tasks is not None and data_task(stage) not in tasks:
        return False
    if kind == "merge" and keys == ("weights",):  # a merge's weights follow its method
        method = _value(stage, ("method",))
        return method == "weighted"
    return applies_when(keys, lambda k: _value(stage, k))


def applies_when(keys: tuple[str, ...], value_of: Callable[[tuple[str, ...]], Any]) -> bool:
    """Whether a setting that depends on another one's choice applies, given `value_of(keys)`
    (the plan's value, or a non-string when it is left out and takes its default)."""
    rule = APPLIES_WHEN.get(keys)
    if rule is None:
        return True
    chooser, default, choices = rule
    chosen = value_of(chooser)
    return (chosen if isinstance(chosen, str) else default) in choices


def _value(stage: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = stage
    for key in keys:
        value = _dict(value).get(key)
    return value
