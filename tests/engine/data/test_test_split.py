"""A held-out test split: taken before the evaluation rows, evaluated once at the end of a
stage as `test/<metric>` on the weights the stage hands on, and counted out of the
training rows the same way by the engine and the window's LR preview."""

from __future__ import annotations

import math

import yaml

from app.model.lr_plan import plan_curve
from engine.spec import PlanInvalid, load_plan_text

PLAN = """
name: t
stages:
  - name: s
    kind: train
    model: {builtin: bert-tiny, vocab_size: 120}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25, test_ratio: 0.2}
    batch_size: 8
    epochs: 1
    eval: {every_steps: 5, metrics: [loss, accuracy, f1]}
    regularization: {early_stopping: {metric: accuracy, patience: 50}}
"""


def test_the_test_split_is_evaluated_once_at_the_end(train_stage_of, data_dir):
    result = train_stage_of(PLAN)
    assert result.outcome in ("finished", "early_stopped")
    test = result.series("test/accuracy")
    steps = sorted(result.series("train/lr"))
    assert list(test) == [steps[-1]] and 0 <= test[steps[-1]] <= 1
    assert steps[-1] in result.series("test/f1")
    (event,) = result.events("test_eval")
    assert event.message.startswith("test, step")
    # 240 rows: 48 test rows first, then 48 of the other 192 for evaluation; 144 train.
    assert len(result.recipe.test_rows) == math.ceil(240 * 0.2) == 48
    assert len(result.recipe.eval_rows) == math.ceil(192 * 0.25) == 48
    assert len(steps) == 144 // 8
    # The window's LR preview counts the same steps.
    (curve,) = plan_curve(yaml.safe_load(PLAN)["stages"], data_dir)
    assert curve.steps == len(steps)


def test_no_test_rows_no_test_metrics(train_stage_of):
    result = train_stage_of(
        PLAN.replace(", test_ratio: 0.2", "").replace("epochs: 1", "max_steps: 3")
    )
    assert result.series("test/accuracy") == {} and result.events("test_eval") == []


def test_hold_outs_must_leave_rows_to_train_on():
    try:
        load_plan_text(PLAN.replace("eval_ratio: 0.25", "eval_ratio: 0.8"))
    except PlanInvalid as exc:
        found = [str(p) for p in exc.problems]
    else:
        found = []
    assert any("stages[0].data" in p and "below 1" in p for p in found), found


def test_stages_with_one_split_seed_hold_out_the_same_rows(data_dir, tmp_path):
    from engine.data.load import load_stage_data
    from engine.spec.settings import DataSource

    def held_out(seed: int, split_seed: int | None):
        source = DataSource(
            path="sentiment.csv", eval_ratio=0.25, test_ratio=0.2, split_seed=split_seed
        )
        data = load_stage_data(source, data_dir, tmp_path / "cache", seed=seed, supervised=True)
        return list(data.test["text"]), list(data.eval["text"])

    assert held_out(1, 7) == held_out(2, 7)
    assert held_out(1, None) != held_out(2, None)
