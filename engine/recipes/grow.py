"""Recipe of `grow` stages: deepen a model by copying its layers (progressive stacking,
engine/models/grow.py), then train the deeper model like `pretrain` (masked or causal LM)
or like `train` (a supervised task) with every per-stage setting.

The deeper model is built again from the source in `setup` on every try of the stage (the
surgery is deterministic); a resumed stage then loads its checkpoint's weights over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.models.grow import grow_model, layer_count, parameter_count
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

CLASSIFICATION = ("sequence_classification", "token_classification")


class GrowRecipe:
    """Grow a model to `target_layers`, then train it (see `engine.train.recipe`)."""

    trains = True

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.objective = ctx.stage.objective
        self.causal = self.objective in ("causal_lm", "causal_lm_sft")
        self.before: tuple[int, int] | None = None  # (layers, parameters) of the source

    def setup(self) -> None:
        """Load data and tokenizer, build the source model, deepen it, encode the rows."""
        stage = self.ctx.stage

        def grow(model: torch.nn.Module) -> torch.nn.Module:
            self.before = (layer_count(model), parameter_count(model))
            return grow_model(
                model, stage.target_layers, stage.method, identity_init=stage.identity_init
            )

        prepared = prepare_stage(
            self.ctx,
            self.objective,
            supervised=self.objective not in ("masked_lm", "causal_lm"),
            transform=grow,
        )
        self.model, self.tokenizer = prepared.model, prepared.tokenizer
        self.train_rows, self.eval_rows = prepared.train_rows, prepared.eval_rows
        self.test_rows = prepared.test_rows
        self.labels = prepared.data.labels if self.objective in CLASSIFICATION else None
        self.num_classes = len(self.labels) if self.labels else None
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)
        self._record_growth()

    def _record_growth(self) -> None:
        """The model's size before and after, as metrics at step 0 and a `grow` event."""
        assert self.before is not None
        layers, params = self.before
        after = parameter_count(self.model)
        stage, ctx = self.ctx.stage, self.ctx
        ctx.recorder.metrics(
            ctx.index,
            0,
            {
                "model/parameters_before": float(params),
                "model/parameters": float(after),
                "model/layers_before": float(layers),
                "model/layers": float(stage.target_layers),
            },
        )
        ctx.recorder.event(
            "grow",
            f"grown from {layers} to {stage.target_layers} layers by {stage.method}"
            f"{' (identity start)' if stage.identity_init else ''}: "
            f"{params:,} → {after:,} parameters",
            stage_idx=ctx.index,
            data={
                "layers_before": layers,
                "layers": stage.target_layers,
                "parameters_before": params,
                "parameters": after,
                "method": stage.method,
                "identity_init": stage.identity_init,
            },
        )

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """The deeper model."""
        return {"model": self.model}

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """None: nothing runs beside the model."""
        return {}

    def sources(self) -> dict[str, list[Any]]:
        """The training split."""
        return {TRAIN_SOURCE: self.train_rows}

    def steps(self) -> int:
        """`max_steps`, or the epochs over the training split."""
        return epoch_steps(self.ctx, self.train_rows)

    def draw(self, streams: Streams, micro_step: int) -> Batch:
        """The training split's next micro-batch."""
        return draw_train(streams, micro_step)

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """MLM masks or next-token targets for language modelling; tasks have labels."""
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
        if self.causal and "labels" not in batch:
            return causal_labels(batch)
        return batch

    def count_targets(self, batch: Batch) -> int:
        """Masked or next tokens, labelled examples or tokens."""
        return count_labelled(batch["labels"], self.causal)

    def loss(self, batch: Batch, targets: int) -> StepLoss:
        """Token-weighted cross-entropy of the head."""
        return head_loss(self.model, batch, targets, self.causal)

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's logits and the targets they predict."""
        return head_predict(self.model, batch, self.causal)

    def save(self) -> list[Path]:
        """Write the deeper model (config with `target_layers` layers) and its tokenizer."""
        return save_output(self.ctx, self.model, self.tokenizer)
