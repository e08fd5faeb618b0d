"""`sequence_regression`: a number per text (MSE), its metrics against hand computations,
and a model that learns the demo reviews' rating."""

from __future__ import annotations

import math

import pytest
import torch

from engine.spec import PlanInvalid, load_plan_text
from engine.train.metrics import RegressionAccumulator, average_ranks


def test_metrics_equal_hand_computations():
    p = torch.tensor([1.0, 2.5, 2.5, 4.0, 5.5])
    t = torch.tensor([1.5, 2.0, 3.0, 3.0, 5.0])
    acc = RegressionAccumulator(torch.device("cpu"))
    acc.add(p[:2], t[:2])
    acc.add(p[2:], t[2:])
    values, _ = acc.result(["loss", "mae", "rmse", "pearson", "spearman"])
    errors = [a - b for a, b in zip(p.tolist(), t.tolist(), strict=True)]
    assert values["loss"] == pytest.approx(sum(e * e for e in errors) / 5)
    assert values["mae"] == pytest.approx(sum(abs(e) for e in errors) / 5)
    assert values["rmse"] == pytest.approx(math.sqrt(values["loss"]))
    mp, mt = sum(p.tolist()) / 5, sum(t.tolist()) / 5
    cov = sum((a - mp) * (b - mt) for a, b in zip(p.tolist(), t.tolist(), strict=True))
    sp = math.sqrt(sum((a - mp) ** 2 for a in p.tolist()))
    st = math.sqrt(sum((b - mt) ** 2 for b in t.tolist()))
    assert values["pearson"] == pytest.approx(cov / (sp * st))
    # Ties share their mean rank: p ranks 1, 2.5, 2.5, 4, 5; t ranks 1, 2, 3.5, 3.5, 5.
    assert average_ranks(p).tolist() == [1, 2.5, 2.5, 4, 5]
    assert average_ranks(t).tolist() == [1, 2, 3.5, 3.5, 5]
    rp, rt = [1, 2.5, 2.5, 4, 5], [1, 2, 3.5, 3.5, 5]
    cov = sum((a - 3) * (b - 3) for a, b in zip(rp, rt, strict=True))
    rho = cov / math.sqrt(sum((a - 3) ** 2 for a in rp) * sum((b - 3) ** 2 for b in rt))
    assert values["spearman"] == pytest.approx(rho)
    flat = RegressionAccumulator(torch.device("cpu"))
    flat.add(torch.ones(3), torch.tensor([1.0, 2.0, 3.0]))
    assert math.isnan(flat.result(["pearson"])[0]["pearson"])


RATING = """
name: rating
stages:
  - name: r
    kind: train
    task: sequence_regression
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: reviews.csv, label_column: rating, max_length: 32, eval_ratio: 0.2}
    batch_size: 16
    max_steps: 60
    optimizer: {lr: 0.003}
    eval: {every_steps: 30, metrics: [loss, mae, rmse, pearson, spearman]}
    regularization: {early_stopping: {metric: mae, patience: 5}}
"""


@pytest.fixture
def reviews(data_dir):
    from engine.resources import resources_dir

    (data_dir / "reviews.csv").write_bytes((resources_dir() / "data" / "reviews.csv").read_bytes())
    return data_dir / "reviews.csv"


def test_a_regression_head_learns_the_review_rating(train_stage_of, reviews):
    result = train_stage_of(RATING)
    assert result.outcome == "finished"
    mae, r = result.series("eval/mae"), result.series("eval/pearson")
    assert set(mae) == {30, 60} and r[60] > 0.5, (mae, r)
    assert result.series("eval/rmse")[60] >= mae[60]
    config = result.recipe.model.config
    assert config.num_labels == 1 and config.problem_type == "regression"
    out = result.recipe.save()[0]
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(str(out)).num_labels == 1


def test_validation_and_data_errors(train_stage_of, reviews):
    try:
        load_plan_text(RATING.replace("mae, rmse", "accuracy, rmse"))
    except PlanInvalid as exc:
        assert any(
            "stages[0].eval.metrics" in str(p) and "accuracy" in str(p) for p in exc.problems
        )
    else:
        raise AssertionError("accuracy accepted for a regression")
    from engine.data.load import DataError

    with pytest.raises(DataError, match="must be a finite number.*'negative'"):
        train_stage_of(RATING.replace("label_column: rating", "label_column: label"))
