"""Recipe of `pretrain` stages: masked-LM or causal-LM on a text corpus."""

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
    mask_tokens,
    prepare_stage,
    save_output,
    special_ids,
)
from engine.runtime.context import StageContext
from engine.train.batches import Streams
from engine.train.recipe import Batch, StepLoss


class PretrainRecipe:
    """Self-supervised pretraining of one model on one corpus (see `engine.train.recipe`)."""

    trains = True

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.objective = ctx.stage.objective
        self.causal = self.objective == "causal_lm"
        self.labels = None
        self.num_classes = None

    def setup(self) -> None:
        """Load data, build the tokenizer and model, encode the corpus."""
        prepared = prepare_stage(self.ctx, self.objective, supervised=False)
        self.model, self.tokenizer = prepared.model, prepared.tokenizer
        self.train_rows, self.eval_rows = prepared.train_rows, prepared.eval_rows
        self.test_rows = prepared.test_rows
        self.data = prepared.data
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """The model being pretrained."""
        return {"model": self.model}

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """None: nothing runs beside the model."""
        return {}

    def sources(self) -> dict[str, list[Any]]:
        """The corpus's training split."""
        return {TRAIN_SOURCE: self.train_rows}

    def steps(self) -> int:
        """`max_steps`, or the epochs over the corpus."""
        return epoch_steps(self.ctx, self.train_rows)

    def draw(self, streams: Streams, micro_step: int) -> Batch:
        """The corpus's next micro-batch."""
        return draw_train(streams, micro_step)

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """Add the self-supervised targets to a padded batch."""
        if self.objective == "masked_lm":
            return mask_tokens(
                batch,
                probability=self.ctx.stage.mlm_probability,
                mask_id=self.mask_id,
                vocab_size=len(self.tokenizer),
                specials=self.special_ids,
                seed=seed,
                micro_step=micro_step,
            )
        return causal_labels(batch)

    def count_targets(self, batch: Batch) -> int:
        """Masked (or next) tokens to predict."""
        return count_labelled(batch["labels"], self.causal)

    def loss(self, batch: Batch, targets: int) -> StepLoss:
        """Token-weighted LM cross-entropy."""
        return head_loss(self.model, batch, targets, self.causal)

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Token logits and the tokens they predict."""
        return head_predict(self.model, batch, self.causal)

    def save(self) -> list[Path]:
        """Write the stage output (model + tokenizer)."""
        return save_output(self.ctx, self.model, self.tokenizer)
