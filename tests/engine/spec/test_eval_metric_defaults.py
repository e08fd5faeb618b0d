"""Eval metrics that follow the task when a plan lists none (issue 27): a classifier records
accuracy and F1 without being asked, the validator, the engine and the window see the same
list, and a plan is still saved as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime.fingerprint import plan_fingerprints
from engine.spec import PlanInvalid, dump_plan, load_plan_text, plan_from_data
from engine.spec.eval_metrics import raw_eval_metrics

CLASSIFICATION = ["loss", "accuracy", "f1", "confusion_matrix"]
REGRESSION = ["loss", "mae", "rmse", "pearson"]
LANGUAGE_MODEL = ["loss", "perplexity", "accuracy"]

BERT = {"builtin": "bert-tiny"}
GPT = {"builtin": "gpt2-tiny"}
CSV = {"path": "d.csv"}

# (stage without eval.metrics, the metrics it records)
CASES = {
    "train": ({"kind": "train", "model": BERT, "data": CSV}, CLASSIFICATION),
    "train token": (
        {"kind": "train", "task": "token_classification", "model": BERT, "data": CSV},
        CLASSIFICATION,
    ),
    "train regression": (
        {"kind": "train", "task": "sequence_regression", "model": BERT, "data": CSV},
        REGRESSION,
    ),
    "train sft": (
        {"kind": "train", "task": "causal_lm_sft", "model": GPT, "data": CSV},
        LANGUAGE_MODEL,
    ),
    "pretrain masked": ({"kind": "pretrain", "model": BERT, "data": CSV}, LANGUAGE_MODEL),
    "pretrain causal": (
        {"kind": "pretrain", "objective": "causal_lm", "model": GPT, "data": CSV},
        LANGUAGE_MODEL,
    ),
    "grow": ({"kind": "grow", "model": BERT, "data": CSV, "target_layers": 4}, LANGUAGE_MODEL),
    "grow classifier": (
        {
            "kind": "grow",
            "objective": "sequence_classification",
            "model": BERT,
            "data": CSV,
            "target_layers": 4,
        },
        CLASSIFICATION,
    ),
    "distill": (
        {"kind": "distill", "teacher": {"path": "t"}, "model": BERT, "data": CSV},
        CLASSIFICATION,
    ),
    "distill masked": (
        {
            "kind": "distill",
            "task": "masked_lm",
            "teacher": {"path": "t"},
            "model": BERT,
            "data": CSV,
        },
        LANGUAGE_MODEL,
    ),
    "ensemble": (
        {"kind": "ensemble", "members": [BERT, BERT], "data": {**CSV, "test_ratio": 0.2}},
        CLASSIFICATION,
    ),
    "preference": ({"kind": "preference", "model": GPT, "data": CSV}, ["loss", "accuracy"]),
    "joint": (
        {
            "kind": "joint",
            "model": BERT,
            "members": [
                {"name": "m1", "data": CSV},
                {"name": "m2", "data": CSV, "task": "sequence_regression"},
            ],
        },
        CLASSIFICATION + ["mae", "rmse", "pearson"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_default_metrics_follow_the_task(case):
    raw, expected = CASES[case]
    stage = {"name": "s", **raw}
    plan = plan_from_data({"name": "p", "stages": [stage]})
    assert plan.stages[0].eval.metrics == expected
    # The window reads the raw plan; it gets the same list without validating.
    assert raw_eval_metrics(stage) == expected
    # The plan is saved as written: the defaults are not copied into it.
    assert "metrics" not in dump_plan(plan)


def test_a_joint_member_takes_the_defaults_of_its_own_task():
    from engine.spec.joint_checks import member_metrics

    raw, _ = CASES["joint"]
    stage = plan_from_data({"name": "p", "stages": [{"name": "s", **raw}]}).stages[0]
    assert member_metrics(stage, stage.members[0]) == CLASSIFICATION
    assert member_metrics(stage, stage.members[1]) == REGRESSION


def test_listed_metrics_are_kept_and_saved():
    raw, _ = CASES["train"]
    for listed in (["loss"], ["loss", "precision"], []):
        stage = {"name": "s", **raw, "eval": {"metrics": listed}}
        plan = plan_from_data({"name": "p", "stages": [stage]})
        assert plan.stages[0].eval.metrics == listed
        assert raw_eval_metrics(stage) == listed
        assert load_plan_text(dump_plan(plan)) == plan


def test_the_defaults_follow_a_change_of_task():
    raw, _ = CASES["train"]
    plan = plan_from_data({"name": "p", "stages": [{"name": "s", **raw}]})
    plan.stages[0].task = "sequence_regression"
    assert plan.stages[0].eval.metrics == REGRESSION
    assert "metrics" not in dump_plan(plan)


def test_early_stopping_and_a_sweep_may_watch_a_default_metric():
    raw, _ = CASES["train"]
    stage = {
        "name": "s",
        **raw,
        "eval": {"every_steps": 5},
        "regularization": {"early_stopping": {"metric": "accuracy"}},
    }
    sweep = {
        "objective": {"stage": "s", "metric": "f1", "goal": "max"},
        "budget": {"trials": 2},
        "space": {"stages.s.optimizer.lr": {"log_uniform": [0.0001, 0.001]}},
    }
    plan_from_data({"name": "p", "stages": [stage], "sweep": sweep})
    # A metric that is neither listed nor a default is still refused, in words.
    stage["regularization"]["early_stopping"]["metric"] = "precision"
    with pytest.raises(PlanInvalid, match="'precision' is not evaluated"):
        plan_from_data({"name": "p", "stages": [stage]})


def test_listing_the_defaults_gives_the_same_fingerprint_as_leaving_them_out(tmp_path: Path):
    (tmp_path / "d.csv").write_text("text,label\na,x\nb,y\n")
    text = "name: p\nstages:\n  - {name: s, kind: train, model: {builtin: bert-tiny}, data: {path: d.csv}%s}\n"
    listed = text % ", eval: {metrics: [loss, accuracy, f1, confusion_matrix]}"
    other = text % ", eval: {metrics: [loss]}"
    left_out = plan_fingerprints(load_plan_text(text % ""), tmp_path)
    assert plan_fingerprints(load_plan_text(listed), tmp_path) == left_out
    assert plan_fingerprints(load_plan_text(other), tmp_path) != left_out
