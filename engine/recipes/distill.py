"""Recipe of `distill` stages: a trained teacher's softened outputs teach a student.

loss = α·task + (1−α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) [+ β·hidden MSE]

The KL term is summed per labelled token for language modelling (masked tokens for MLM,
next tokens for causal LM) and token classification, per example for sequence
classification, and divided by the step's count of them, as every loss of the engine is
(token-weighted). `train/loss_task` and `train/loss_kd` are the two terms unweighted (the
KD term with its T² factor), so `train/loss = α·loss_task + (1−α)·loss_kd (+ β·loss_hidden)`.

The teacher is a frozen module: the loop moves it to the device in eval mode without
gradients and never checkpoints it; its forward runs under `torch.no_grad()` inside the
loop's autocast. A sequence classifier's teacher reads the text with its own tokenizer (its
encoding rides in the same rows: `engine.recipes.encodings`); where the outputs are tokens
both models read the same token ids, so their vocabularies must be one (a built-in student
takes the teacher's tokenizer). The student's head takes the teacher's label list. With
`alpha: 0` the labels are not read: a sequence task learns from unlabelled text, and
evaluation then scores the student's agreement with the teacher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from engine.data.encode import IGNORE, encode
from engine.models.build import build_model, build_tokenizer
from engine.models.grow import keep_lowest_layers
from engine.recipes.common import (
    load_data,
    model_reporter,
    save_output,
    seed_everything,
    special_ids,
    tokenizer_reporter,
    with_adapter,
)
from engine.recipes.encodings import (
    READ_APART,
    model_inputs,
    same_tokenizer,
    vocabulary_problem,
    with_encoding,
)
from engine.recipes.heads import (
    CAUSAL,
    OneSourceStage,
    add_targets,
    align_logits,
    count_labelled,
    one_eval_set,
    sample_source,
)
from engine.recipes.teacher import DistillError, load_teacher, record_models, teacher_dir
from engine.runtime.context import StageContext
from engine.train.evaluation import evaluate
from engine.train.losses import hidden_mse_sum, kd_loss
from engine.train.recipe import (
    Batch,
    EvalSet,
    StepLoss,
    Targets,
)

CLASSIFICATION = ("sequence_classification", "token_classification")
# The prefix of the teacher's own encoding in a row (when it reads with another tokenizer).
TEACHER = "teacher_"


class DistillRecipe(OneSourceStage):
    """A student learns from a frozen teacher (see `engine.train.recipe`)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        stage = ctx.stage
        self.task = stage.task
        self.causal = self.task in CAUSAL
        # alpha 0: no label is read; a sequence task then learns from unlabelled text.
        self.unlabelled = stage.alpha == 0 and self.task == "sequence_classification"
        self.projection: torch.nn.Module | None = None
        self.apart = False  # whether the teacher reads the text with its own tokenizer

    # --- setup --------------------------------------------------------------------------

    def setup(self) -> None:
        """Load the teacher, the data, the student (with the teacher's tokenizer and labels
        where it is built here), check that they fit, encode, and score the teacher once."""
        ctx, stage = self.ctx, self.ctx.stage
        where = teacher_dir(ctx)
        teacher_tokenizer = AutoTokenizer.from_pretrained(
            where,
            revision=stage.teacher.revision,
            trust_remote_code=stage.teacher.trust_remote_code,
        )
        self.teacher = load_teacher(ctx, where, self.task)
        teacher_labels = None
        if self.task in CLASSIFICATION:
            id2label = self.teacher.config.id2label
            teacher_labels = [str(id2label[i]) for i in range(len(id2label))]

        objective = "masked_lm" if self.unlabelled else self.task
        data = load_data(
            ctx,
            objective,
            supervised=self.task not in ("masked_lm", "causal_lm") and not self.unlabelled,
        )
        if teacher_labels is not None and data.labels is not None:
            unknown = [label for label in data.labels if label not in teacher_labels]
            if unknown:
                raise DistillError(
                    f"stages[{ctx.index}].data: labels {', '.join(unknown[:5])} are not among "
                    f"the teacher's ({', '.join(teacher_labels)}); teacher and student need "
                    "one label set"
                )
        self.labels = teacher_labels

        if stage.model.builtin:
            # A new student takes the teacher's tokenizer: one encoding for both, and the
            # one vocabulary that token outputs need.
            self.tokenizer = teacher_tokenizer
        else:
            self.tokenizer = build_tokenizer(
                stage.model,
                ctx.plan_dir,
                ctx.outputs,
                ctx.stage_dir / "tokenizer",
                lambda: [],
                objective=self.task,
                report=tokenizer_reporter(ctx),
            )
        self._check_tokenizers(teacher_tokenizer)
        seed_everything(stage.seed)
        self.model = build_model(
            stage.model,
            self.task,
            self.tokenizer,
            ctx.plan_dir,
            ctx.outputs,
            labels=teacher_labels,
            max_length=stage.data.max_length,
            dropout=stage.regularization.dropout,
            report=model_reporter(ctx),
        )
        if stage.student_layers:
            self.model = keep_lowest_layers(self.model, stage.student_layers)
        # Adapters go on the student as it will train (after it lost its upper layers);
        # its base is written beside the adapters if the output is adapter.
        self.model = with_adapter(ctx, self.model, objective)
        if stage.hidden_weight:
            width_s = self.model.config.hidden_size
            width_t = self.teacher.config.hidden_size
            # Widths that differ meet through a learned projection (trained, checkpointed).
            self.projection = torch.nn.Linear(width_s, width_t) if width_s != width_t else None

        def rows(split: Any) -> list[Any] | None:
            if not split:
                return None
            encoded = encode(split, self.tokenizer, stage.data, objective, teacher_labels)
            if not self.apart:
                return encoded.to_list()
            theirs = encode(split, teacher_tokenizer, stage.data, objective, teacher_labels)
            return with_encoding(encoded.to_list(), theirs.to_list(), TEACHER)

        self.train_rows = rows(data.train) or []
        self.eval_rows, self.test_rows = rows(data.eval), rows(data.test)
        self.teacher_pad_id = self._teacher_pad(teacher_tokenizer) if self.apart else None
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)
        record_models(ctx, self.teacher, self.model, where)
        if not self.unlabelled and ctx.dist.main:
            # Scored once, by the owner (it records; the other processes only train).
            self.teacher.to(ctx.device)
            teacher = one_eval_set(ctx, self.eval_rows, self._teacher_predict, self.labels)
            evaluate(ctx, self, 0, prefix="teacher", sets=teacher)

    def _check_tokenizers(self, teacher_tokenizer: Any) -> None:
        """A sequence classifier's teacher reads with its own tokenizer when the student's
        is another; token outputs need one vocabulary."""
        if same_tokenizer(self.tokenizer, teacher_tokenizer):
            return
        where = f"stages[{self.ctx.index}]"
        if self.task in READ_APART:
            if self.ctx.stage.hidden_weight:
                raise DistillError(
                    f"{where}.hidden_weight: the student reads the text with another "
                    "tokenizer than the teacher, and hidden states are compared position by "
                    "position; set hidden_weight to 0 (the label distributions are still "
                    "distilled)"
                )
            self.apart = True
            return
        differ = vocabulary_problem(
            self.tokenizer, teacher_tokenizer, ("the student", "the teacher")
        )
        if differ is not None:  # the same vocabulary otherwise: the student's ids, as always
            raise DistillError(
                f"{where}.model: the student's vocabulary is not the teacher's: {differ}; a "
                f"{self.task.replace('_', ' ')} student learns the teacher's outputs token by "
                "token, so use a built-in student (it takes the teacher's tokenizer) or a "
                "model with the teacher's tokenizer"
            )

    def _teacher_pad(self, tokenizer: Any) -> int:
        """The id on the teacher's own padding: the one its config names (a decoder's
        classifier finds each row's last real token by it), else its tokenizer's padding
        or end-of-text id, which a config without one is then given."""
        config = self.teacher.config
        if config.pad_token_id is None:
            pad = tokenizer.pad_token_id
            pad = tokenizer.eos_token_id if pad is None else pad
            config.pad_token_id = 0 if pad is None else pad
        return config.pad_token_id

    def _teacher_inputs(self, batch: Batch) -> Batch:
        """The teacher's inputs: its own encoding of the rows, or the student's."""
        if self.apart:
            return model_inputs(batch, TEACHER, self.teacher_pad_id)
        return model_inputs(batch)

    # --- the protocol -------------------------------------------------------------------

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        """The student (and the hidden-state projection when widths differ)."""
        modules: dict[str, torch.nn.Module] = {"model": self.model}
        if self.projection is not None:
            modules["projection"] = self.projection
        return modules

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        """The teacher: it only runs."""
        return {"teacher": self.teacher}

    def prepare(self, batch: Batch, *, seed: int, micro_step: int, train: bool) -> Batch:
        """The task's targets, as both models see them (MLM masks, next tokens)."""
        return add_targets(
            batch,
            self.task,
            self.ctx,
            self.tokenizer,
            self.special_ids,
            seed=seed,
            micro_step=micro_step,
        )

    def count_targets(self, batch: Batch) -> int:
        """Labelled tokens or examples; every example of unlabelled text."""
        if "labels" not in batch:
            return int(batch["input_ids"].shape[0])
        return count_labelled(batch["labels"], self.causal)

    def _forward(self, batch: Batch) -> dict[str, Any]:
        """Student and teacher on the same rows; logits at the positions that count."""
        labels = batch.get("labels")
        hidden = bool(self.ctx.stage.hidden_weight)
        student = self.model(**model_inputs(batch), output_hidden_states=hidden)
        with torch.no_grad():
            teacher = self.teacher(**self._teacher_inputs(batch), output_hidden_states=hidden)
        s_logits, t_logits = student.logits, teacher.logits
        if labels is not None:
            s_logits, aligned = align_logits(s_logits, labels, self.causal)
            t_logits, _ = align_logits(t_logits, labels, self.causal)
            keep = aligned != IGNORE
        else:
            aligned, keep = None, None
        return {
            "student": student,
            "teacher": teacher,
            "s": s_logits,
            "t": t_logits,
            "labels": aligned,
            "keep": keep,
            "mask": batch["attention_mask"],
        }

    def loss(self, source: str, batch: Batch, targets: Targets) -> StepLoss:
        """α·task + (1−α)·T²·KL [+ β·hidden MSE], summed per labelled token or example and
        divided by the step's count of them."""
        stage, count = self.ctx.stage, targets.total
        out = self._forward(batch)
        loss, kd, task = kd_loss(
            out["s"],
            out["t"],
            out["labels"],
            temperature=stage.temperature,
            alpha=stage.alpha,
            count=count,
        )
        parts = {"loss_kd": kd}
        if task is not None:
            parts["loss_task"] = task
        if stage.hidden_weight:
            hidden = self._hidden_sum(out) / count
            loss = loss + stage.hidden_weight * hidden
            parts["loss_hidden"] = hidden
        return StepLoss(loss, parts)

    def _hidden_sum(self, out: dict[str, Any]) -> torch.Tensor:
        """MSE of the last hidden states (projected to the teacher's width), summed over the
        positions the KD term counts (per example: the mean over its tokens)."""
        s_h = out["student"].hidden_states[-1].float()
        t_h = out["teacher"].hidden_states[-1]
        if self.projection is not None:
            s_h = self.projection(s_h)
        if out["keep"] is not None and self.task != "sequence_classification":
            # Token tasks: the labelled tokens (a causal LM's targets leave out the last).
            return hidden_mse_sum(s_h, t_h, positions=out["keep"])
        return hidden_mse_sum(s_h, t_h, attention_mask=out["mask"])

    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's logits and the labels (the teacher's choices on unlabelled data)."""
        labels = batch.get("labels")
        logits = self.model(**model_inputs(batch)).logits
        if labels is None:
            return logits, self.teacher(**self._teacher_inputs(batch)).logits.argmax(-1)
        return align_logits(logits, labels, self.causal)

    def eval_sets(self, prefix: str) -> list[EvalSet]:
        """The student on the eval (test) rows."""
        rows = self.test_rows if prefix == "test" else self.eval_rows
        answers = sample_source(self.task, self.model, self.tokenizer, self.labels)
        return one_eval_set(self.ctx, rows, self.predict, self.labels, samples=answers)

    def _teacher_predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's logits on the same rows and masks."""
        logits = self.teacher(**self._teacher_inputs(batch)).logits
        return align_logits(logits, batch["labels"], self.causal)

    def save(self) -> list[Path]:
        """Write the student (model + tokenizer, the teacher's label names in its config)."""
        return save_output(self.ctx, self.model, self.tokenizer)
