"""How much GPU memory a stage needs, estimated before Run from its plan settings alone
(no torch, no Qt): weights + gradients + optimizer states + activations. The formula and
its constants are in docs/memory.md; tests/app/test_memory_estimate.py compares it with
what a real tiny model holds after one training step. The model's shape comes from
`shapes.py`. `stagelab validate --gpu-memory` warns with it; the window's inspector says it
in its own words (app/model/memory_estimate.py, app/model/size_line.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.spec.memory.parameters import Count, Shape, count, lora_parameters
from engine.spec.memory.shapes import mapping, positive_int, stage_max_length, stage_shape

GIB = 2**30
# Activation bytes per token and layer, in units of hidden width, at 16 bits (Korthikanti
# et al. 2022, "Reducing activation recomputation", with the MLP at its own width):
# attention 11·h + 5·heads·seq, norms 4·h, MLP 3·h + 4·intermediate.
ATTENTION_PER_H, NORMS_PER_H, MLP_PER_H, MLP_PER_I, SCORES_PER_HEAD_TOKEN = 11, 4, 3, 4, 5
# Beyond that count, I-wide tensors the MLP keeps by family (16-bit units): GPT-2's
# tanh-GELU runs as separate eager operations, Llama-style MLPs are gated (gate, up,
# SiLU(gate), their product). Calibrated on CPU by tests/app/test_memory_estimate.py.
MLP_EXTRA_PER_I = {"gpt2": 8, "llama": 4, "qwen2": 4, "mistral": 4}
QLORA_BYTES_PER_WEIGHT = 0.5 + 4 / 64  # NF4 plus one fp32 scale per block of 64


@dataclass(frozen=True)
class MemoryEstimate:
    """A stage's parameters and memory in bytes, by part."""

    parameters: int
    trainable: int  # at the start of the stage
    weights: float
    gradients: float
    optimizer: float
    activations: float
    teacher: float = 0.0  # a distillation teacher's weights (frozen, no states)

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.teacher

    def parts(self) -> list[tuple[str, float]]:
        """(name, bytes) of the parts that hold memory, in the order they are told."""
        parts = [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer states", self.optimizer),
            ("activations", self.activations),
            ("teacher", self.teacher),
        ]
        return [(name, value) for name, value in parts if value]

    def fits(self, free_bytes: float | None) -> bool:
        """Whether the estimate fits in `free_bytes` (None: the CPU, no limit)."""
        return free_bytes is None or self.total <= free_bytes


# What to do when a stage does not fit: the settings the estimate grows with.
ADVICE = "lower batch_size or max_length, freeze layers, or train a LoRA adapter"


def advice(stage: dict[str, Any]) -> str:
    """What would make stage `stage` (a raw plan mapping) smaller, in the estimate's terms:
    `ADVICE`, led by bf16 when it trains in fp32 (activations are counted at 4 bytes then,
    2 in bf16/fp16)."""
    precision = str(stage.get("precision") or "fp32")
    if precision in ("bf16", "fp16"):
        return ADVICE
    return "use precision: bf16 (on a GPU that has it), " + ADVICE


def gb(n: float) -> str:
    """'62 MB', '1.4 GB', '23 GB'."""
    if n < GIB:
        return f"{max(n / 2**20, 0.1):.2g} MB" if n < 10 * 2**20 else f"{n / 2**20:.0f} MB"
    return f"{n / GIB:.2g} GB" if n < 10 * GIB else f"{n / GIB:.0f} GB"


def head_of(stage: dict[str, Any]) -> str:
    kind = stage.get("kind")
    if kind in ("pretrain", "grow"):
        return str(stage.get("objective") or "masked_lm")
    task = str(stage.get("task") or "sequence_classification")
    return "causal_lm" if task.startswith("causal_lm") else task


def trainable_count(
    stage: dict[str, Any], shape: Shape, counted: Count, *, peak: bool = False
) -> int:
    """Parameters the optimizer updates at the start of the stage: all but the frozen
    embeddings and first layers, or only the LoRA adapters (and a classification head,
    which peft trains in full) when the stage has an adapter. `peak`: once gradual
    unfreezing has released everything (memory peaks then)."""
    adapter = mapping(stage.get("adapter"))
    if adapter:
        rank = positive_int(adapter.get("rank"), 8)
        targets = adapter.get("target_modules")
        targets = [str(t) for t in targets] if isinstance(targets, list) else None
        head = counted.head if "classification" in head_of(stage) else 0
        return lora_parameters(shape, rank, targets) + head
    freezing = mapping(stage.get("freezing"))
    if peak and freezing.get("unfreeze"):
        return counted.total
    frozen_layers = min(positive_int(freezing.get("layers"), 0), counted.layers)
    frozen = frozen_layers * counted.per_layer
    if freezing.get("embeddings") is True:
        frozen += counted.embeddings
    return counted.total - frozen


def activation_bytes(stage: dict[str, Any], shape: Shape, head: str, seq: int) -> float:
    """Saved activations of one micro-batch of rows of `seq` tokens: per layer that
    gradients pass through, plus the logits of a language-model head (and their softmax
    for the backward pass)."""
    batch = positive_int(stage.get("batch_size"), 16)
    h, i = shape.hidden, shape.intermediate
    per_layer_16bit = (
        batch
        * seq
        * (
            (ATTENTION_PER_H + NORMS_PER_H + MLP_PER_H) * h
            + (MLP_PER_I + MLP_EXTRA_PER_I.get(shape.family, 0)) * i
            + SCORES_PER_HEAD_TOKEN * shape.heads * seq
        )
    )
    precision = str(stage.get("precision") or "fp32")
    scale = 1.0 if precision in ("bf16", "fp16") else 2.0  # the counts are for 16 bits
    freezing = mapping(stage.get("freezing"))
    layers = shape.layers
    unfreezes = bool(freezing.get("unfreeze"))
    if not stage.get("adapter") and freezing.get("embeddings") is True and not unfreezes:
        # Nothing below the first trainable layer needs its inputs kept for a gradient.
        layers -= min(positive_int(freezing.get("layers"), 0), layers)
    logits = batch * seq * shape.vocab * 4 * 2 if head in ("masked_lm", "causal_lm") else 0
    return per_layer_16bit * scale * layers + logits


def estimate(stages: list[Any], index: int, plan_dir: Path) -> MemoryEstimate | None:
    """The estimate of stage `index`, None if its model's size is not known yet."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    shape = stage_shape(stages, index, plan_dir)
    if shape is None:
        return None
    head = head_of(stage)
    counted = count(shape, head)
    trainable = trainable_count(stage, shape, counted)
    peak = trainable_count(stage, shape, counted, peak=True)
    adapter = mapping(stage.get("adapter"))
    if adapter.get("kind") == "qlora":
        base = counted.per_layer * counted.layers
        weights = base * QLORA_BYTES_PER_WEIGHT + (counted.total - base) * 2 + peak * 4
    elif adapter:
        weights = (counted.total + peak) * 4.0
    else:
        weights = counted.total * 4.0  # fp32 weights: bf16/fp16 are autocast, not stored
    optimizer_name = str(mapping(stage.get("optimizer")).get("name") or "adamw")
    momentum = mapping(stage.get("optimizer")).get("momentum")
    per_state = 8 if optimizer_name in ("adam", "adamw") else 4 if momentum else 0
    teacher = 0.0
    if stage.get("kind") == "distill":
        teacher_stage = {**stage, "model": stage.get("teacher"), "kind": "train"}
        teacher_shape = stage_shape([*stages[:index], teacher_stage], index, plan_dir)
        if teacher_shape is not None:
            teacher = count(teacher_shape, head).total * 4.0
    return MemoryEstimate(
        parameters=counted.total + (trainable if adapter else 0),
        trainable=trainable,
        weights=weights,
        gradients=peak * 4.0,
        optimizer=peak * float(per_state),
        activations=activation_bytes(stage, shape, head, stage_max_length(stages, index, plan_dir)),
        teacher=teacher,
    )


def member_estimates(
    stages: list[Any], index: int, plan_dir: Path
) -> list[tuple[str, dict[str, Any], MemoryEstimate | None]]:
    """(name, the member as a stage of its own, its estimate or None) for each member of
    the mutual joint stage `index`: every member trains its own model at once."""
    stage = mapping(stages[index])
    members = stage.get("members") if isinstance(stage.get("members"), list) else []
    out = []
    for member in members:
        member = mapping(member)
        alone = {
            **stage,
            "kind": "train",
            "task": member.get("task") or "sequence_classification",
            "model": mapping(member.get("model")),
            "data": mapping(member.get("data")),
        }
        name = str(member.get("name") or "member")
        out.append((name, alone, estimate([*stages[:index], alone], index, plan_dir)))
    return out


def summed(estimates: list[MemoryEstimate]) -> MemoryEstimate:
    """Models that train side by side (a mutual joint stage's members): their parts added."""
    return MemoryEstimate(
        parameters=sum(e.parameters for e in estimates),
        trainable=sum(e.trainable for e in estimates),
        weights=sum(e.weights for e in estimates),
        gradients=sum(e.gradients for e in estimates),
        optimizer=sum(e.optimizer for e in estimates),
        activations=sum(e.activations for e in estimates),
        teacher=sum(e.teacher for e in estimates),
    )


def stage_estimate(stages: list[Any], index: int, plan_dir: Path) -> MemoryEstimate | None:
    """What stage `index` needs while it trains: its model's estimate, a mutual joint
    stage's members added up; None for an ensemble (it trains nothing) or a size not known
    before the model is loaded."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    if stage.get("kind") == "ensemble":
        return None
    if stage.get("kind") == "joint" and stage.get("coupling") == "mutual":
        guesses = [guess for _, _, guess in member_estimates(stages, index, plan_dir)]
        if not guesses or any(g is None for g in guesses):
            return None
        return summed(guesses)
    return estimate(stages, index, plan_dir)


def too_big(
    stages: list[Any], plan_dir: Path, memory_bytes: float
) -> list[tuple[int, MemoryEstimate]]:
    """(index, estimate) of every stage whose estimate exceeds `memory_bytes`."""
    out = []
    for index in range(len(stages)):
        try:
            guess = stage_estimate(stages, index, plan_dir)
        except (TypeError, ValueError, ArithmeticError):  # a setting the plan check refuses
            continue
        if guess is not None and not guess.fits(memory_bytes):
            out.append((index, guess))
    return out
