"""Recipe of `pretrain` stages: masked-LM or causal-LM on a text corpus."""

from __future__ import annotations

from typing import Any

import torch

from engine.process.context import StageContext
from engine.recipes.common import (
    causal_labels,
    mask_tokens,
    prepare_stage,
    save_output,
    shift_for_causal,
    special_ids,
)


class PretrainRecipe:
    """Self-supervised pretraining of one stage.

    Interface shared by every recipe: `setup()`, then the loop uses `model`, `train_rows`,
    `eval_rows`, `prepare()`, `targets()`, `align()`; `save()` writes the stage output.
    """

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.objective = ctx.stage.objective
        self.labels = None
        self.num_classes = None

    def setup(self) -> None:
        """Load data, build the tokenizer and model, encode the corpus."""
        prepared = prepare_stage(self.ctx, self.objective, supervised=False)
        self.model, self.tokenizer = prepared.model, prepared.tokenizer
        self.train_rows, self.eval_rows = prepared.train_rows, prepared.eval_rows
        self.data = prepared.data
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)

    def prepare(
        self, batch: dict[str, torch.Tensor], *, seed: int, micro_step: int, train: bool
    ) -> dict[str, torch.Tensor]:
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

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """The labels the logits predict (shifted for causal LM), to count them."""
        return labels[:, 1:] if self.objective == "causal_lm" else labels

    def align(
        self, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the labels they predict, for token accuracy."""
        if self.objective == "causal_lm":
            return shift_for_causal(logits, labels)
        return logits, labels

    def save(self) -> Any:
        """Write the stage output (model + tokenizer)."""
        save_output(self.ctx, self.model, self.tokenizer)
