"""Recipe of `train` stages: sequence classification, token classification, or causal-LM
supervised fine-tuning. A new task on an earlier stage's model keeps its backbone and gets
a fresh head."""

from __future__ import annotations

from typing import Any

import torch

from engine.process.context import StageContext
from engine.recipes.common import (
    causal_labels,
    prepare_stage,
    save_output,
    shift_for_causal,
    special_ids,
)


class TrainRecipe:
    """Supervised training of one stage (same interface as every recipe)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.task = ctx.stage.task

    def setup(self) -> None:
        """Load labelled data, build tokenizer and model with the task's head, encode."""
        prepared = prepare_stage(self.ctx, self.task, supervised=True)
        self.model, self.tokenizer = prepared.model, prepared.tokenizer
        self.train_rows, self.eval_rows = prepared.train_rows, prepared.eval_rows
        self.data = prepared.data
        classification = self.task in ("sequence_classification", "token_classification")
        self.labels = prepared.data.labels if classification else None
        self.num_classes = len(self.labels) if self.labels else None
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)

    def prepare(
        self, batch: dict[str, torch.Tensor], *, seed: int, micro_step: int, train: bool
    ) -> dict[str, torch.Tensor]:
        """Plain-text causal fine-tuning learns every token; other tasks have labels."""
        if self.task == "causal_lm_sft" and "labels" not in batch:
            return causal_labels(batch)
        return batch

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """The labels the logits predict (shifted for causal LM), to count them."""
        return labels[:, 1:] if self.task == "causal_lm_sft" else labels

    def align(
        self, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the labels they predict."""
        if self.task == "causal_lm_sft":
            return shift_for_causal(logits, labels)
        return logits, labels

    def save(self) -> Any:
        """Write the stage output (model + tokenizer, label names in the config)."""
        save_output(self.ctx, self.model, self.tokenizer)
