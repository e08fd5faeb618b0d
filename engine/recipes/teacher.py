"""A distillation teacher (engine/recipes/distill.py): where it is, loading it with the
task's head (and refusing one without a trained head of that task), and recording its
identity and size beside the student's."""

from __future__ import annotations

import hashlib

import torch
from transformers.utils import logging as hf_logging

from engine.models.build import AUTO_CLASS, ModelError, source_dir
from engine.models.grow import layer_count, parameter_count
from engine.runtime.context import StageContext

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


def teacher_dir(ctx: StageContext) -> str:
    """The folder the stage's teacher loads from (a trained model, never a built-in)."""
    source = ctx.stage.teacher
    if source.builtin:
        raise DistillError(
            f"stages[{ctx.index}].teacher: a teacher must be trained already; name "
            "an earlier stage (from_stage), a model folder or a Hub id"
        )
    return source_dir(source, ctx.plan_dir, ctx.outputs)


def load_teacher(ctx: StageContext, where: str, task: str) -> torch.nn.Module:
    """The teacher with the task's head, frozen, in eval mode."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        teacher = AUTO_CLASS[task].from_pretrained(
            where,
            revision=ctx.stage.teacher.revision,
            trust_remote_code=ctx.stage.teacher.trust_remote_code,
        )
    except (OSError, ValueError) as exc:
        raise DistillError(
            f"stages[{ctx.index}].teacher: cannot load '{where}' for "
            f"{task.replace('_', ' ')}: {exc}"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    heads = [a for a in (teacher.config.architectures or [])]
    if heads and not any(a.endswith(HEADS[task]) for a in heads):
        raise DistillError(
            f"stages[{ctx.index}].teacher: the teacher ({where}) has no trained "
            f"{task.replace('_', ' ')} head (its config names {', '.join(heads)}); "
            "distil from a model trained for this task"
        )
    teacher.eval().requires_grad_(False)
    return teacher


def record_models(
    ctx: StageContext, teacher: torch.nn.Module, student: torch.nn.Module, where: str
) -> None:
    """The teacher's identity (source, folder, weights fingerprint) and both sizes."""
    fingerprint = weights_fingerprint(teacher)
    teacher_params, student_params = parameter_count(teacher), parameter_count(student)
    ctx.recorder.metrics(
        ctx.index,
        0,
        {"model/parameters": float(student_params), "teacher/parameters": float(teacher_params)},
    )
    layers = {}
    for who, model in (("teacher", teacher), ("student", student)):
        try:
            layers[who] = layer_count(model)
        except (AttributeError, TypeError):
            layers[who] = None
    ctx.recorder.event(
        "teacher",
        f"teacher {where} ({teacher_params:,} parameters, sha256 "
        f"{fingerprint[:12]}…) → student {student_params:,} parameters",
        stage_idx=ctx.index,
        data={
            "source": ctx.stage.teacher.model_dump(exclude_defaults=True),
            "folder": where,
            "sha256": fingerprint,
            "parameters": teacher_params,
            "student_parameters": student_params,
            "layers": layers["teacher"],
            "student_layers": layers["student"],
        },
    )
