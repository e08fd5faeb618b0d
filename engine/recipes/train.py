"""Recipe of `train` stages: sequence classification, token classification, or causal-LM
supervised fine-tuning. A new task on an earlier stage's model keeps its backbone and gets
a fresh head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.recipes.common import (
    TRAIN_SOURCE,
    causal_labels,
    count_labelled,
    draw_train,
    epoch_steps,
    head_loss,
    head_predict,
    prepare_stage,
    regression_loss,
    regression_predict,
    save_output,
    special_ids,
)
from engine.runtime.context import StageContext
from engine.train.batches import Streams
from engine.train.recipe import Batch, StepLoss


class TrainRecipe:
    """Supervised training of one model on one labelled data set (see `engine.train.recipe`)."""

    trains = True

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.task = ctx.stage.task
        self.causal = self.task == "causal_lm_sft"
        self.regression = self.task == "sequence_regression"  # evaluation: MAE, RMSE, r

    def setup(self) -> None:
        """Load labelled data, build tokenizer and model with the task's head, encode."""
        prepared = prepare_stage(self.ctx, self.task, supervised=True)
        self.model, self.tokenizer = prepared.model, prepared.tokenizer
        self.train_rows, self.eval_rows = prepared.train_rows, prepared.eval_rows
        self.test_rows = prepared.test_rows
        self.data = prepared.data
        classification = self.task in ("sequence_classification", "token_classification")
        self.labels = prepared.data.labels if classification else None
        self.num_classes = len(self.labels) if self.labels else None
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """The model with its task head."""
        return {"model": self.model}

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """None: nothing runs beside the model."""
        return {}

    def sources(self) -> dict[str, list[Any]]:
        """The labelled training split."""
        return {TRAIN_SOURCE: self.train_rows}

    def steps(self) -> int:
        """`max_steps`, or the epochs over the training split."""
        return epoch_steps(self.ctx, self.train_rows)

    def draw(self, streams: Streams, micro_step: int) -> Batch:
        """The training split's next micro-batch."""
        return draw_train(streams, micro_step)

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """Plain-text causal fine-tuning learns every token; other tasks have labels."""
        if self.causal and "labels" not in batch:
            return causal_labels(batch)
        return batch

    def count_targets(self, batch: Batch) -> int:
        """Labelled examples (sequence tasks) or tokens (token tasks, causal LM)."""
        return count_labelled(batch["labels"], self.causal)

    def loss(self, batch: Batch, targets: int) -> StepLoss:
        """Cross-entropy of the task head, weighted per labelled example or token."""
        if self.regression:
            return regression_loss(self.model, batch, targets)
        return head_loss(self.model, batch, targets, self.causal)

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's logits and the labels they predict."""
        if self.regression:
            return regression_predict(self.model, batch)
        return head_predict(self.model, batch, self.causal)

    def save(self) -> list[Path]:
        """Write the stage output (model + tokenizer, label names in the config)."""
        return save_output(self.ctx, self.model, self.tokenizer)
