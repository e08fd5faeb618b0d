"""Which settings and eval metrics apply to a stage, stage kind × task
(engine.spec.relevance): the one table the inspector shows settings from and the validator
checks metrics against. Plain data, no Qt."""

from __future__ import annotations

import pytest

from engine.spec import plan_problems
from engine.spec.relevance import applies, stage_metrics, stage_task
from engine.spec.settings import EVAL_METRICS

DATA = {"path": "rows.csv"}
HUB = {"hub": "org/model"}
# (kind, task field, task) for every kind and each of its tasks.
CASES = [
    ("pretrain", "objective", "masked_lm"),
    ("pretrain", "objective", "causal_lm"),
    ("train", "task", "sequence_classification"),
    ("train", "task", "token_classification"),
    ("train", "task", "sequence_regression"),
    ("train", "task", "causal_lm_sft"),
    ("distill", "task", "sequence_classification"),
    ("distill", "task", "token_classification"),
    ("distill", "task", "causal_lm_sft"),
    ("distill", "task", "masked_lm"),
    ("distill", "task", "causal_lm"),
    ("grow", "objective", "masked_lm"),
    ("grow", "objective", "causal_lm"),
    ("grow", "objective", "sequence_classification"),
    ("grow", "objective", "token_classification"),
    ("grow", "objective", "causal_lm_sft"),
    ("preference", None, "preference"),
    ("ensemble", None, "sequence_classification"),
]
CLASSIFYING = {"sequence_classification", "token_classification"}
LANGUAGE_MODEL = {"masked_lm", "causal_lm", "causal_lm_sft"}


def stage_of(kind: str, field: str | None, task: str, **extra) -> dict:
    """A valid raw stage of `kind` training `task` (no files are checked)."""
    causal = task.startswith("causal") or kind == "preference"
    model = {"builtin": "gpt2-tiny" if causal else "bert-tiny"}
    stage: dict = {"name": "s", "kind": kind, "data": DATA}
    if field:
        stage[field] = task
    if kind == "ensemble":
        stage["members"] = [HUB, {"hub": "org/other"}]
    else:
        stage["model"] = model
    if kind == "distill":
        stage["teacher"] = HUB
    if kind == "grow":
        stage["target_layers"] = 4
    return {**stage, **extra}


@pytest.mark.parametrize(("kind", "field", "task"), CASES)
def test_settings_apply_by_kind_and_task(kind, field, task):
    stage = stage_of(kind, field, task)
    assert stage_task(stage) == task
    evaluation_only = kind == "ensemble"
    for group in ("optimizer", "schedule", "regularization", "freezing", "checkpoint"):
        assert applies(stage, (group,)) is not evaluation_only, group
        assert applies(stage, (group, "name" if group != "freezing" else "layers")) is not (
            evaluation_only
        )
    assert applies(stage, ("augmentation",)) is (kind not in ("ensemble", "preference"))
    for key in ("epochs", "max_steps", "grad_accum", "log_every_steps", "precision"):
        assert applies(stage, (key,)) is not evaluation_only, key
    assert applies(stage, ("eval", "every_steps")) is not evaluation_only
    for key in ("batch_size", "seed", "cache"):  # an ensemble scores in batches, splits by seed
        assert applies(stage, (key,))
    assert applies(stage, ("eval", "metrics")) and applies(stage, ("data", "max_length"))
    # The masking rate only where tokens are masked.
    assert applies(stage, ("mlm_probability",)) is (task == "masked_lm")
    # The columns each task reads.
    assert applies(stage, ("data", "label_column")) is (
        task in CLASSIFYING | {"sequence_regression"}
    )
    assert applies(stage, ("data", "labels")) is (task in CLASSIFYING)
    assert applies(stage, ("data", "text_column")) is (task != "preference")
    for key in ("response_column", "messages_column"):
        assert applies(stage, ("data", key)) is (task == "causal_lm_sft")
    assert applies(stage, ("data", "prompt_column")) is (task in ("causal_lm_sft", "preference"))
    for key in ("chosen_column", "rejected_column"):
        assert applies(stage, ("data", key)) is (task == "preference")


@pytest.mark.parametrize(("kind", "field", "task"), CASES)
def test_metrics_follow_the_task_in_the_table_and_in_the_validator(kind, field, task):
    stage = stage_of(kind, field, task)
    offered = stage_metrics(stage)
    if task in LANGUAGE_MODEL:
        assert set(offered) == {"loss", "perplexity", "accuracy"}
    elif task == "preference":
        assert set(offered) == {"loss", "accuracy"}
    elif task == "sequence_regression":
        assert set(offered) == {"loss", "mae", "rmse", "pearson", "spearman"}
    else:
        assert "perplexity" not in offered and "mae" not in offered and "spearman" not in offered
        assert {"accuracy", "f1", "confusion_matrix"} <= set(offered)
    # The validator reads the same table: every offered metric passes, every other one is
    # reported at eval.metrics.
    plan = {"version": 1, "name": "p", "stages": [{**stage, "eval": {"metrics": list(offered)}}]}
    assert not [p for p in plan_problems(plan) if p.path.endswith("eval.metrics")]
    for metric in EVAL_METRICS:
        if metric in offered:
            continue
        plan["stages"][0]["eval"] = {"metrics": ["loss", metric]}
        found = [p for p in plan_problems(plan) if p.path == "stages[0].eval.metrics"]
        assert found and found[0].message.startswith(f"{metric} do not apply"), metric


def test_regression_offers_regression_metrics_and_a_joint_stage_its_members():
    regression = stage_of("train", "task", "sequence_regression")
    assert stage_metrics(regression) == ("loss", "mae", "rmse", "pearson", "spearman")
    member = {"name": "a", "data": DATA}
    joint = {"name": "j", "kind": "joint", "model": {"builtin": "bert-tiny"}}
    both = {**joint, "members": [member, {**member, "name": "b", "task": "sequence_regression"}]}
    assert {"f1", "mae"} <= set(stage_metrics(both)) and "perplexity" not in stage_metrics(both)
    classifiers = {**joint, "members": [member, {**member, "name": "b"}]}
    assert "mae" not in stage_metrics(classifiers)
    plan = {"version": 1, "name": "p", "stages": [{**classifiers, "eval": {"metrics": ["mae"]}}]}
    assert [p for p in plan_problems(plan) if p.path == "stages[0].eval.metrics"]


def test_ensemble_weights_apply_to_average_only():
    ensemble = stage_of("ensemble", None, "sequence_classification")
    assert applies(ensemble, ("weights",))  # combiner average is the default
    assert applies({**ensemble, "combiner": "average"}, ("weights",))
    assert not applies({**ensemble, "combiner": "vote"}, ("weights",))
    assert not applies({**ensemble, "combiner": "weighted"}, ("weights",))


def test_an_unlabelled_distillation_reads_no_labels():
    distill = stage_of("distill", "task", "sequence_classification", alpha=0)
    assert not applies(distill, ("data", "label_column"))
    assert applies(distill, ("data", "text_column"))


def test_choices_still_decide_optimizer_and_schedule_settings():
    stage = stage_of("train", "task", "sequence_classification")
    assert applies(stage, ("optimizer", "betas")) and not applies(stage, ("optimizer", "momentum"))
    sgd = {**stage, "optimizer": {"name": "sgd"}}
    assert applies(sgd, ("optimizer", "momentum")) and not applies(sgd, ("optimizer", "eps"))
    assert not applies(stage, ("schedule", "gamma"))
    assert applies({**stage, "schedule": {"name": "step"}}, ("schedule", "gamma"))
