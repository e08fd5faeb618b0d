"""The recipe of `pretrain`, `train` and `grow` stages: one model trained on its head's
loss over one data source. The kinds differ in little, all read from the stage here:

* `pretrain`: masked-LM or causal-LM on a text corpus (`objective`; no labels read);
* `train`: a supervised task (`task`): sequence or token classification, causal-LM
  fine-tuning, or sequence regression (a mean squared error head; MAE, RMSE, r). A new
  task on an earlier stage's model keeps its backbone and gets a fresh head;
* `grow`: deepen a model by copying its layers (progressive stacking,
  engine/models/grow.py), then train the deeper model like `pretrain` (masked or causal
  LM) or like `train` (a supervised task). The deeper model is built again from the source
  in `setup` on every try of the stage (the surgery is deterministic); a resumed stage
  then loads its checkpoint's weights over it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.models.grow import grow_model, layer_count, parameter_count
from engine.recipes.common import prepare_stage, save_output, special_ids
from engine.recipes.heads import (
    CAUSAL,
    OneSourceStage,
    add_targets,
    count_labelled,
    head_loss,
    head_predict,
    masked_width,
    one_eval_set,
    regression_loss,
    regression_predict,
    sample_source,
)
from engine.runtime.context import StageContext
from engine.train.packing import model_inputs, pack_stage_rows
from engine.train.recipe import (
    Batch,
    EvalSet,
    StepLoss,
    Targets,
)

CLASSIFICATION = ("sequence_classification", "token_classification")
# Objectives that read no label: the text is its own target.
SELF_SUPERVISED = ("masked_lm", "causal_lm")


class SingleModelRecipe(OneSourceStage):
    """One model, one source, its head's loss (see `engine.train.recipe`)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        stage = ctx.stage
        self.objective = stage.task if stage.kind == "train" else stage.objective
        self.causal = self.objective in CAUSAL
        self.regression = self.objective == "sequence_regression"  # evaluation: MAE, RMSE, r
        self.grows = stage.kind == "grow"

    def setup(self) -> None:
        """Load data, build the tokenizer and the model with its head (deepened for a
        grow stage), encode the rows."""
        before: list[tuple[int, int]] = []  # (layers, parameters) of a grown model's source

        def grow(model: torch.nn.Module) -> torch.nn.Module:
            before.append((layer_count(model), parameter_count(model)))
            stage = self.ctx.stage
            return grow_model(
                model, stage.target_layers, stage.method, identity_init=stage.identity_init
            )

        prepared = prepare_stage(
            self.ctx,
            self.objective,
            supervised=self.objective not in SELF_SUPERVISED,
            transform=grow if self.grows else None,
        )
        self.model, self.tokenizer = prepared.model, prepared.tokenizer
        self.train_rows, self.eval_rows = prepared.train_rows, prepared.eval_rows
        self.test_rows = prepared.test_rows
        self.data = prepared.data
        self.labels = prepared.data.labels if self.objective in CLASSIFICATION else None
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)
        if self.ctx.stage.packing:  # rows into full sequences (engine.train.packing)
            self.train_rows = pack_stage_rows(self.ctx, self.model, self.train_rows, self.causal)
        if before:
            record_growth(self.ctx, *before[0], parameter_count(self.model))

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """The model with its head."""
        return {"model": self.model}

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """None: nothing runs beside the model."""
        return {}

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """MLM masks or next-token targets for language modelling; tasks have labels."""
        return add_targets(
            batch,
            self.objective,
            self.ctx,
            self.tokenizer,
            self.special_ids,
            seed=seed,
            micro_step=micro_step,
        )

    def count_targets(self, batch: Batch) -> int:
        """Masked or next tokens, labelled examples or tokens."""
        return count_labelled(batch["labels"], self.causal)

    def loss(self, source: str, batch: Batch, targets: Targets) -> StepLoss:
        """Cross-entropy of the head (squared error of a regression head), weighted per
        labelled token or example."""
        if self.regression:
            return regression_loss(self.model, batch, targets.total)
        width = None
        if self.objective == "masked_lm":  # the head on the masked positions only
            width = masked_width(self.ctx.stage.mlm_probability, batch["input_ids"].shape[1])
        if self.ctx.stage.packing:
            batch = model_inputs(batch, self.model, self.causal)
        return head_loss(self.model, batch, targets.total, self.causal, width=width)

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's logits (a regression head's numbers) and the targets they predict."""
        if self.regression:
            return regression_predict(self.model, batch)
        return head_predict(self.model, batch, self.causal)

    def eval_sets(self, prefix: str) -> list[EvalSet]:
        """The eval (test) rows through `predict`."""
        rows = self.test_rows if prefix == "test" else self.eval_rows
        answers = sample_source(self.objective, self.model, self.tokenizer, self.labels)
        return one_eval_set(
            self.ctx,
            rows,
            self.predict,
            self.labels,
            regression=self.regression,
            samples=answers,
        )

    def save(self) -> list[Path]:
        """Write the stage output (model + tokenizer, label names in the config)."""
        return save_output(self.ctx, self.model, self.tokenizer)


def record_growth(ctx: StageContext, layers: int, params: int, after: int) -> None:
    """A grown model's size before and after, as metrics at step 0 and a `grow` event."""
    stage = ctx.stage
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
