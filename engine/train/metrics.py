"""Evaluation metrics.

The evaluation loss is token-weighted as every loss is (`engine/train/losses.py`): the sum
of per-position losses over the labelled positions (tokens for language modelling and token
classification, examples for sequence classification) divided by their count, over the
whole evaluation. A batch without a labelled position then adds nothing instead of a NaN
mean.

Evaluation counts stay on the device until the end: one host sync per evaluation.
"""

from __future__ import annotations

import math

import torch

from engine.data.encode import IGNORE
from engine.train.losses import cross_entropy_sum


def macro_scores(confusion: torch.Tensor) -> tuple[float, float, float]:
    """Macro precision, recall and F1 of a confusion matrix (rows: true label).

    As scikit-learn's `average="macro", zero_division=0`: averaged over the labels that
    occur in the true labels or the predictions; a label never predicted has precision 0,
    one never true has recall 0.
    """
    cm = confusion.double()
    tp = cm.diag()
    predicted, actual = cm.sum(0), cm.sum(1)
    seen = (predicted > 0) | (actual > 0)
    if not seen.any():
        return 0.0, 0.0, 0.0
    zero = torch.zeros_like(tp)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), zero)
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), zero)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), zero)
    return (
        precision[seen].mean().item(),
        recall[seen].mean().item(),
        f1[seen].mean().item(),
    )


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n, tied values sharing their mean rank (as Spearman's rho wants)."""
    order = torch.argsort(values, stable=True)
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=torch.float64)
    unique, inverse = torch.unique(values, return_inverse=True)
    sums = torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, ranks)
    counts = torch.bincount(inverse, minlength=len(unique)).double()
    return (sums / counts)[inverse]


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson's r (NaN when either side is constant: r is undefined there)."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = (x.square().sum() * y.square().sum()).sqrt()
    return float((x * y).sum() / denom) if denom > 0 else math.nan


class RegressionAccumulator:
    """Predictions and targets of a regression head over an evaluation (kept whole: the
    correlations need every row; eval sets are small)."""

    def __init__(self, device: torch.device):
        self.predicted: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def add(self, predicted: torch.Tensor, targets: torch.Tensor) -> None:
        self.predicted.append(predicted.detach().float().reshape(-1))
        self.targets.append(targets.detach().float().reshape(-1))

    def result(self, wanted: list[str]) -> tuple[dict[str, float], None]:
        """loss (MSE), mae, rmse, pearson, spearman, those that are wanted."""
        if not self.predicted:
            return {}, None
        p, t = torch.cat(self.predicted).cpu(), torch.cat(self.targets).cpu()  # one sync
        if p.numel() == 0:
            return {}, None
        error = p.double() - t.double()
        values = {
            "loss": float(error.square().mean()),
            "mae": float(error.abs().mean()),
            "rmse": float(error.square().mean().sqrt()),
            "pearson": pearson(p, t),
            "spearman": pearson(average_ranks(p.double()), average_ranks(t.double())),
        }
        return {k: v for k, v in values.items() if k in wanted}, None


class EvalAccumulator:
    """Sums losses and counts predictions over evaluation batches."""

    def __init__(self, num_classes: int | None, device: torch.device):
        self.num_classes = num_classes
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.count = torch.zeros((), device=device, dtype=torch.long)
        # Counts per (true, predicted) cell, flat, with one more cell that collects the
        # unlabelled positions (so no boolean indexing, which waits for the device).
        self.cells = (
            torch.zeros(num_classes * num_classes + 1, device=device, dtype=torch.long)
            if num_classes
            else None
        )

    @property
    def confusion(self) -> torch.Tensor | None:
        """The confusion matrix so far, [true, predicted]."""
        if self.cells is None:
            return None
        k = self.num_classes
        return self.cells[: k * k].view(k, k)

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: aligned logits [..., classes] and labels [...] (IGNORE skipped).
        Everything stays on the device: no host sync per batch."""
        self.loss_sum += cross_entropy_sum(logits.detach(), labels).double()
        preds = logits.argmax(dim=-1)
        keep = labels != IGNORE
        self.correct += ((preds == labels) & keep).sum()
        self.count += keep.sum()
        if self.cells is not None:
            k = self.num_classes
            cell = torch.where(keep, labels * k + preds, k * k).reshape(-1)
            self.cells.index_add_(0, cell, torch.ones_like(cell))

    def result(self, wanted: list[str]) -> tuple[dict[str, float], list[list[int]] | None]:
        """The wanted metrics and, if asked for, the confusion matrix (rows: true label).

        Loss, perplexity and accuracy are left out when the eval set has no labelled
        position at all: they are undefined, and a made-up 0 or NaN would mislead.
        """
        count = self.count.item()  # host sync: once per evaluation
        out: dict[str, float] = {}
        if count:
            loss = self.loss_sum.item() / count
            if "loss" in wanted:
                out["loss"] = loss
            if "perplexity" in wanted:
                out["perplexity"] = math.exp(loss) if loss < 709 else math.inf
            if "accuracy" in wanted:
                out["accuracy"] = self.correct.item() / count
        matrix = None
        if self.confusion is not None:
            cm = self.confusion.cpu()
            precision, recall, f1 = macro_scores(cm)
            for name, value in (("precision", precision), ("recall", recall), ("f1", f1)):
                if name in wanted:
                    out[name] = value
            if "confusion_matrix" in wanted:
                matrix = cm.tolist()
        return out, matrix
