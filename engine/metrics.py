"""Evaluation metrics from a confusion matrix accumulated on the device.

One host sync per evaluation: counts stay on the device until the end.
"""

from __future__ import annotations

import math

import torch


class EvalAccumulator:
    """Sums loss and counts predictions over evaluation batches."""

    def __init__(self, num_classes: int | None, device: torch.device):
        self.num_classes = num_classes
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.batches = 0
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.count = torch.zeros((), device=device, dtype=torch.long)
        self.confusion = (
            torch.zeros((num_classes, num_classes), device=device, dtype=torch.long)
            if num_classes
            else None
        )

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: its mean loss, logits [..., classes] and labels [...] (-100 skipped)."""
        self.loss_sum += loss.detach().double()
        self.batches += 1
        preds = logits.argmax(dim=-1)
        keep = labels != -100
        preds, labels = preds[keep], labels[keep]
        self.correct += (preds == labels).sum()
        self.count += labels.numel()
        if self.confusion is not None:
            k = self.num_classes
            self.confusion += torch.bincount(labels * k + preds, minlength=k * k).view(k, k)

    def result(self, wanted: list[str]) -> tuple[dict[str, float], list[list[int]] | None]:
        """The wanted metrics and, if asked for, the confusion matrix (rows: true label)."""
        loss = (self.loss_sum / max(self.batches, 1)).item()  # host sync: once per evaluation
        out: dict[str, float] = {}
        if "loss" in wanted:
            out["loss"] = loss
        if "perplexity" in wanted:
            out["perplexity"] = math.exp(min(loss, 50.0))
        if "accuracy" in wanted:
            out["accuracy"] = self.correct.item() / max(self.count.item(), 1)
        matrix = None
        if self.confusion is not None:
            cm = self.confusion.cpu()
            tp = cm.diag().double()
            predicted, actual = cm.sum(0).double(), cm.sum(1).double()
            precision = torch.where(
                predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp)
            )
            recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
            denom = precision + recall
            f1 = torch.where(
                denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp)
            )
            # Macro averages over the classes present in the data, so absent classes of a
            # shared label list do not drag the score to zero.
            present = actual > 0
            if "precision" in wanted:
                out["precision"] = precision[present].mean().item() if present.any() else 0.0
            if "recall" in wanted:
                out["recall"] = recall[present].mean().item() if present.any() else 0.0
            if "f1" in wanted:
                out["f1"] = f1[present].mean().item() if present.any() else 0.0
            if "confusion_matrix" in wanted:
                matrix = cm.tolist()
        return out, matrix
