"""Evaluation metrics: token-weighted losses and macro scores as scikit-learn defines them."""

from __future__ import annotations

import math
import random

import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support

from engine.train.metrics import EvalAccumulator, macro_scores

WANTED = ["loss", "perplexity", "accuracy", "precision", "recall", "f1"]


def one_hot_logits(preds: list[int], classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(preds), classes).float() * 5


def confusion(y: list[int], p: list[int], k: int) -> torch.Tensor:
    cm = torch.zeros((k, k), dtype=torch.long)
    for t, q in zip(y, p, strict=True):
        cm[t, q] += 1
    return cm


def test_the_issue_example_matches_scikit_learn():
    y, p = [0, 0, 1], [0, 2, 1]
    precision, recall, f1 = macro_scores(confusion(y, p, 3))
    expected = precision_recall_fscore_support(y, p, average="macro", zero_division=0)
    assert (precision, recall, f1) == pytest.approx(expected[:3], abs=1e-12)
    assert f1 == pytest.approx(5 / 9)


@pytest.mark.parametrize("seed", range(40))
def test_macro_scores_equal_scikit_learn_on_random_cases(seed):
    rng = random.Random(seed)
    k = rng.randint(2, 7)
    n = rng.randint(1, 40)
    # Skewed draws leave some classes out of the true labels, the predictions or both.
    y = [min(int(rng.expovariate(0.8)), k - 1) for _ in range(n)]
    p = [rng.choice([t, rng.randrange(k)]) for t in y]
    acc = EvalAccumulator(k, torch.device("cpu"))
    acc.add(one_hot_logits(p, k), torch.tensor(y))
    got, _ = acc.result(WANTED)
    want = precision_recall_fscore_support(y, p, average="macro", zero_division=0)
    assert [got["precision"], got["recall"], got["f1"]] == pytest.approx(want[:3], abs=1e-12)


def test_eval_loss_is_token_weighted_and_a_batch_without_labels_adds_nothing():
    gen = torch.Generator().manual_seed(0)
    acc = EvalAccumulator(None, torch.device("cpu"))
    # Batch 1: no labelled position at all (an MLM batch of short lines with no mask).
    acc.add(torch.randn(2, 4, 11, generator=gen), torch.full((2, 4), -100))
    # Batch 2: 3 labelled positions; batch 3: 1.
    logits2 = torch.randn(2, 4, 11, generator=gen)
    labels2 = torch.tensor([[-100, 3, -100, 5], [7, -100, -100, -100]])
    logits3 = torch.randn(1, 4, 11, generator=gen)
    labels3 = torch.tensor([[-100, -100, 2, -100]])
    acc.add(logits2, labels2)
    acc.add(logits3, labels3)
    got, _ = acc.result(WANTED)
    per_position = torch.cat(
        [
            torch.nn.functional.cross_entropy(
                logits2[labels2 != -100], labels2[labels2 != -100], reduction="none"
            ),
            torch.nn.functional.cross_entropy(
                logits3[labels3 != -100], labels3[labels3 != -100], reduction="none"
            ),
        ]
    ).double()
    assert per_position.numel() == 4
    assert got["loss"] == pytest.approx(per_position.mean().item(), rel=1e-6)
    assert got["perplexity"] == pytest.approx(math.exp(got["loss"]), rel=1e-12)
    # Not the mean of the batch means (which would weigh the single position of batch 3
    # as much as the three of batch 2).
    batch_means = (per_position[:3].mean() + per_position[3]) / 2
    assert abs(got["loss"] - batch_means.item()) > 1e-4


def test_sequence_classification_loss_is_per_example():
    acc = EvalAccumulator(3, torch.device("cpu"))
    logits_a, labels_a = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([1])
    logits_b = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    labels_b = torch.tensor([1, 2, 0])
    acc.add(logits_a, labels_a)
    acc.add(logits_b, labels_b)
    got, _ = acc.result(["loss", "accuracy"])
    every = torch.nn.functional.cross_entropy(
        torch.cat([logits_a, logits_b]), torch.cat([labels_a, labels_b]), reduction="none"
    )
    assert got["loss"] == pytest.approx(every.mean().item(), rel=1e-6)
    assert got["accuracy"] == pytest.approx(3 / 4)


def test_an_eval_set_without_any_label_has_no_loss_rather_than_nan():
    acc = EvalAccumulator(None, torch.device("cpu"))
    acc.add(torch.randn(2, 3, 5), torch.full((2, 3), -100))
    got, _ = acc.result(WANTED)
    assert got == {}
