"""Recipe of `distill` stages: a trained teacher's softened outputs teach a student.

loss = α·task + (1−α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) [+ β·hidden MSE]

The KL term is summed per labelled token for language modelling (masked tokens for MLM,
next tokens for causal LM) and token classification, per example for sequence
classification, and divided by the step's count of them, as every loss of the engine is
(token-weighted). `train/loss_task` and `train/loss_kd` are the two terms unweighted (the
KD term with its T² factor), so `train/loss = α·loss_task + (1−α)·loss_kd (+ β·loss_hidden)`.

The teacher is a frozen module: the loop moves it to the device in eval mode without
gradients and never checkpoints it; its forward runs under `torch.no_grad()` inside the
loop's autocast. Both models read the same token ids, so their vocabularies must match (a
built-in student takes the teacher's tokenizer), and the student's head takes the teacher's
label list. With `alpha: 0` the labels are not read: a sequence task learns from unlabelled
text, and evaluation then scores the student's agreement with the teacher.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

from engine.data.encode import IGNORE, encode
from engine.models.build import AUTO_CLASS, ModelError, build_model, build_tokenizer, source_dir
from engine.models.grow import keep_lowest_layers, layer_count, parameter_count
from engine.recipes.common import (
    load_data,
    model_reporter,
    save_output,
    seed_everything,
    special_ids,
    with_adapter,
)
from engine.recipes.heads import (
    CAUSAL,
    add_targets,
    align_logits,
    count_labelled,
    draw_train,
    epoch_steps,
    one_eval_set,
    one_source,
)
from engine.runtime.context import StageContext
from engine.train.batches import Streams
from engine.train.evaluation import evaluate
from engine.train.losses import hidden_mse_sum, kd_loss
from engine.train.recipe import (
    Batch,
    Drawn,
    EvalSet,
    LoopSettings,
    StepLoss,
    Targets,
    one_model_settings,
)

CLASSIFICATION = ("sequence_classification", "token_classification")
# The head class a teacher's config must name for the task (the `architectures` suffix).
HEADS = {
    "sequence_classification": ("ForSequenceClassification",),
    "token_classification": ("ForTokenClassification",),
    "masked_lm": ("ForMaskedLM", "ForPreTraining"),
    "causal_lm": ("LMHeadModel", "ForCausalLM"),
    "causal_lm_sft": ("LMHeadModel", "ForCausalLM"),
}


class DistillError(ModelError):
    """Teacher and student cannot be distilled together; the message says why."""


def weights_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of a model's weights (names, shapes, dtypes and bytes, in name order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class DistillRecipe:
    """A student learns from a frozen teacher (see `engine.train.recipe`)."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        stage = ctx.stage
        self.task = stage.task
        self.causal = self.task in CAUSAL
        # alpha 0: no label is read; a sequence task then learns from unlabelled text.
        self.unlabelled = stage.alpha == 0 and self.task == "sequence_classification"
        self.projection: torch.nn.Module | None = None

    # --- setup --------------------------------------------------------------------------

    def setup(self) -> None:
        """Load the teacher, the data, the student (with the teacher's tokenizer and labels
        where it is built here), check that they fit, encode, and score the teacher once."""
        ctx, stage = self.ctx, self.ctx.stage
        teacher_dir = self._teacher_dir()
        teacher_tokenizer = AutoTokenizer.from_pretrained(
            teacher_dir, revision=stage.teacher.revision
        )
        self.teacher = self._load_teacher(teacher_dir)
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
            # A new student reads the teacher's token ids, so it takes the teacher's tokenizer.
            self.tokenizer = teacher_tokenizer
        else:
            self.tokenizer = build_tokenizer(
                stage.model, ctx.plan_dir, ctx.outputs, ctx.stage_dir / "tokenizer", lambda: []
            )
        if self.tokenizer.get_vocab() != teacher_tokenizer.get_vocab():
            raise DistillError(
                f"stages[{ctx.index}].model: the student's vocabulary ({len(self.tokenizer)} "
                f"tokens) is not the teacher's ({len(teacher_tokenizer)} tokens); distillation "
                "compares their outputs on the same token ids, so use a built-in student (it "
                "takes the teacher's tokenizer) or a model with the teacher's tokenizer"
            )
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

        self.train_rows = encode(
            data.train, self.tokenizer, stage.data, objective, teacher_labels
        ).to_list()
        self.eval_rows = (
            encode(data.eval, self.tokenizer, stage.data, objective, teacher_labels).to_list()
            if data.eval
            else None
        )
        self.test_rows = (
            encode(data.test, self.tokenizer, stage.data, objective, teacher_labels).to_list()
            if data.test
            else None
        )
        self.pad_id = self.tokenizer.pad_token_id
        self.mask_id = self.tokenizer.mask_token_id
        self.special_ids = special_ids(self.tokenizer)
        self._record_models(teacher_dir)
        if not self.unlabelled and ctx.dist.main:
            # Scored once, by the owner (it records; the other processes only train).
            self.teacher.to(ctx.device)
            teacher = one_eval_set(ctx, self.eval_rows, self._teacher_predict, self.labels)
            evaluate(ctx, self, 0, prefix="teacher", sets=teacher)

    def _teacher_dir(self) -> str:
        source = self.ctx.stage.teacher
        if source.builtin:
            raise DistillError(
                f"stages[{self.ctx.index}].teacher: a teacher must be trained already; name "
                "an earlier stage (from_stage), a model folder or a Hub id"
            )
        return source_dir(source, self.ctx.plan_dir, self.ctx.outputs)

    def _load_teacher(self, where: str) -> torch.nn.Module:
        stage = self.ctx.stage
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            teacher = AUTO_CLASS[self.task].from_pretrained(where, revision=stage.teacher.revision)
        except (OSError, ValueError) as exc:
            raise DistillError(
                f"stages[{self.ctx.index}].teacher: cannot load '{where}' for "
                f"{self.task.replace('_', ' ')}: {exc}"
            ) from None
        finally:
            hf_logging.set_verbosity(verbosity)
        heads = [a for a in (teacher.config.architectures or [])]
        if heads and not any(a.endswith(HEADS[self.task]) for a in heads):
            raise DistillError(
                f"stages[{self.ctx.index}].teacher: the teacher ({where}) has no trained "
                f"{self.task.replace('_', ' ')} head (its config names {', '.join(heads)}); "
                "distil from a model trained for this task"
            )
        teacher.eval().requires_grad_(False)
        return teacher

    def _record_models(self, teacher_dir: str) -> None:
        """The teacher's identity (source, folder, weights fingerprint) and both sizes."""
        ctx, stage = self.ctx, self.ctx.stage
        fingerprint = weights_fingerprint(self.teacher)
        teacher_params, student_params = (
            parameter_count(self.teacher),
            parameter_count(self.model),
        )
        ctx.recorder.metrics(
            ctx.index,
            0,
            {
                "model/parameters": float(student_params),
                "teacher/parameters": float(teacher_params),
            },
        )
        layers = {}
        for who, model in (("teacher", self.teacher), ("student", self.model)):
            try:
                layers[who] = layer_count(model)
            except (AttributeError, TypeError):
                layers[who] = None
        ctx.recorder.event(
            "teacher",
            f"teacher {teacher_dir} ({teacher_params:,} parameters, sha256 "
            f"{fingerprint[:12]}…) → student {student_params:,} parameters",
            stage_idx=ctx.index,
            data={
                "source": stage.teacher.model_dump(exclude_defaults=True),
                "folder": teacher_dir,
                "sha256": fingerprint,
                "parameters": teacher_params,
                "student_parameters": student_params,
                "layers": layers["teacher"],
                "student_layers": layers["student"],
            },
        )

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

    def loop_settings(self) -> LoopSettings:
        """The student is the one model freezing acts on."""
        return one_model_settings(self.ctx.stage, self.model)

    def sources(self) -> dict[str, list[Any]]:
        """The student's training split."""
        return one_source(self.train_rows)

    def steps(self) -> int:
        """`max_steps`, or the epochs over the training split."""
        return epoch_steps(self.ctx, self.train_rows)

    def draw(self, streams: Streams, micro_step: int) -> Drawn:
        """The training split's next micro-batch."""
        return draw_train(streams)

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
        """Student and teacher on the same inputs; logits at the positions that count."""
        batch = dict(batch)
        labels = batch.pop("labels", None)
        hidden = bool(self.ctx.stage.hidden_weight)
        student = self.model(**batch, output_hidden_states=hidden)
        with torch.no_grad():
            teacher = self.teacher(**batch, output_hidden_states=hidden)
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
        batch = dict(batch)
        labels = batch.pop("labels", None)
        logits = self.model(**batch).logits
        if labels is None:
            return logits, self.teacher(**batch).logits.argmax(-1)
        return align_logits(logits, labels, self.causal)

    def eval_sets(self, prefix: str) -> list[EvalSet]:
        """The student on the eval (test) rows."""
        rows = self.test_rows if prefix == "test" else self.eval_rows
        return one_eval_set(self.ctx, rows, self.predict, self.labels)

    def _teacher_predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's logits on the same rows and masks."""
        batch = dict(batch)
        labels = batch.pop("labels")
        return align_logits(self.teacher(**batch).logits, labels, self.causal)

    def save(self) -> list[Path]:
        """Write the student (model + tokenizer, the teacher's label names in its config)."""
        return save_output(self.ctx, self.model, self.tokenizer)
