"""How much GPU memory a stage needs, estimated before Run from its plan settings alone
(no torch): weights + gradients + optimizer states + activations. The formula and its
constants are in docs/memory.md; tests/app/test_memory_estimate.py compares it with
what a real tiny model holds after one training step. Qt-free."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.model.model_size import parameters_text
from app.model.parameter_count import (
    Count,
    Shape,
    count,
    lora_parameters,
    shape_from_builtin,
    shape_from_config,
    with_layers,
)

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

    def text(self) -> str:
        """'1.4 M params (0.2 M trainable) · ≈ 0.3 GB'."""
        return (
            f"{parameters_text(self.parameters)} params "
            f"({parameters_text(self.trainable)} trainable) · ≈ {gb(self.total)}"
        )

    def breakdown(self) -> str:
        parts = [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer states", self.optimizer),
            ("activations", self.activations),
            ("teacher", self.teacher),
        ]
        return "\n".join(f"{name}: {gb(value)}" for name, value in parts if value)

    def warning(self, free_bytes: float | None, device: str = "the GPU") -> str:
        """A sentence when the estimate exceeds the free memory of the chosen GPU."""
        if free_bytes is None or self.total <= free_bytes:
            return ""
        return (
            f"≈ {gb(self.total)} is more than the {gb(free_bytes)} free on {device}: lower "
            "batch_size or max_length, freeze layers, or train a LoRA adapter"
        )


def gb(n: float) -> str:
    """'62 MB', '1.4 GB', '23 GB'."""
    if n < GIB:
        return f"{max(n / 2**20, 0.1):.2g} MB" if n < 10 * 2**20 else f"{n / 2**20:.0f} MB"
    return f"{n / GIB:.2g} GB" if n < 10 * GIB else f"{n / GIB:.0f} GB"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )


def stage_shape(stages: list[Any], index: int, plan_dir: Path, seen: int = 0) -> Shape | None:
    """The shape of stage `index`'s model: a built-in (with the vocabulary of the tokenizer
    the engine will really use), a saved folder, or (through from_stage) an earlier stage's,
    grown to its target layers. None: not known before the model is loaded (a Hub id, a
    folder not there yet)."""
    stage = _dict(stages[index]) if 0 <= index < len(stages) else {}
    return source_shape(stages, index, _dict(stage.get("model")), plan_dir, seen)


def source_shape(
    stages: list[Any], index: int, source: dict[str, Any], plan_dir: Path, seen: int = 0
) -> Shape | None:
    """The shape of the model `source` names in stage `index` (its model, a member's)."""
    stage = _dict(stages[index]) if 0 <= index < len(stages) else {}
    max_length = _int(_dict(stage.get("data")).get("max_length"), 128)
    shape = None
    if isinstance(source.get("builtin"), str):
        vocab = builtin_vocabulary(stages, index, source, plan_dir, seen)
        shape = None if vocab is None else shape_from_builtin(source["builtin"], vocab, max_length)
    elif isinstance(source.get("path"), str):
        path = Path(source["path"]).expanduser()
        shape = shape_from_config(path if path.is_absolute() else plan_dir / path)
    elif isinstance(source.get("from_stage"), str) and seen < len(stages):
        names = [_dict(s).get("name") for s in stages]
        if source["from_stage"] in names[:index]:
            j = names.index(source["from_stage"])
            earlier = _dict(stages[j])
            member = _member(earlier, source.get("member"))
            if member is not None and isinstance(member.get("model"), dict):
                shape = source_shape(stages, j, member["model"], plan_dir, seen + 1)
            else:
                shape = stage_shape(stages, j, plan_dir, seen + 1)
    if shape is not None and stage.get("kind") == "grow" and source is stage.get("model"):
        shape = with_layers(shape, _int(stage.get("target_layers"), shape.layers))
    return shape


def _member(stage: dict[str, Any], name: Any) -> dict[str, Any] | None:
    """The joint member called `name` of a raw stage (None: not a joint member)."""
    if stage.get("kind") != "joint" or not isinstance(name, str):
        return None
    members = stage.get("members")
    for member in members if isinstance(members, list) else []:
        if _dict(member).get("name") == name:
            return _dict(member)
    return None


def builtin_vocabulary(
    stages: list[Any], index: int, source: dict[str, Any], plan_dir: Path, seen: int = 0
) -> int | None:
    """Tokens of the tokenizer a built-in model of stage `index` will really use: a distill
    student takes its teacher's tokenizer (whatever its own vocab_size says); any other
    learns at most vocab_size pieces from the stage's training texts, fewer from a small
    corpus (engine.spec.vocabulary). None: the teacher's size is not known yet."""
    stage = _dict(stages[index]) if 0 <= index < len(stages) else {}
    if stage.get("kind") == "distill" and source is stage.get("model"):
        teacher = source_shape(stages, index, _dict(stage.get("teacher")), plan_dir, seen + 1)
        return None if teacher is None else teacher.vocab
    requested = _int(source.get("vocab_size"), 4000)
    arch = str(source["builtin"]).partition("-")[0]
    return learned_vocabulary(arch, requested, _text_sources(stage), plan_dir)


def _text_sources(stage: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(data, task) of every data set a stage's built-in tokenizer learns from: its own, or
    every joint member's."""
    from engine.spec.relevance import data_task

    if stage.get("kind") == "joint":
        members = stage.get("members")
        return [
            (_dict(_dict(m).get("data")), str(_dict(m).get("task") or "sequence_classification"))
            for m in (members if isinstance(members, list) else [])
        ]
    return [(_dict(stage.get("data")), data_task(stage))]


# Data files larger than this are not read for the vocabulary (under a second of reading):
# a corpus that size fills the vocab_size of the usual plans.
VOCABULARY_FILE_BYTES = 4 * 2**20
_vocabularies: dict[tuple, int] = {}


def learned_vocabulary(
    arch: str, requested: int, sources: list[tuple[dict[str, Any], str]], plan_dir: Path
) -> int:
    """The size of the tokenizer a built-in `arch` model learns from the training texts of
    `sources` (local files; Hub data or a large file: the requested size)."""
    from app.model.data_files import columns_read, split_files
    from engine.spec.rows import keep_row, read_records
    from engine.spec.vocabulary import learned_vocab_size

    files = []
    for data, task in sources:
        if not isinstance(data.get("path"), str) or not data["path"]:
            return requested
        path = Path(data["path"]).expanduser()
        path = path if path.is_absolute() else plan_dir / path
        try:
            file = split_files(path).get(str(data.get("train_split") or "train"))
            stat = file.stat() if file is not None else None
        except OSError:
            return requested
        if file is None or stat is None or stat.st_size > VOCABULARY_FILE_BYTES:
            return requested
        wanted = columns_read({"kind": "train", "task": task, "data": data})
        texts = tuple(c for k, c in wanted.items() if k != "label_column")
        fmt = str(data.get("format") or "auto")
        files.append((file, fmt, texts, tuple(wanted.values()), stat.st_mtime, stat.st_size))
    key = (arch, requested, tuple((str(f), *rest) for f, *rest in files))
    if key not in _vocabularies:

        def texts():
            # The engine learns from the training split's kept rows (engine.recipes.common);
            # the eval rows it holds out are counted here too: at most a few more tokens.
            for file, fmt, columns, needed, *_ in files:
                for row in read_records(file, fmt):
                    if keep_row(row, list(needed)):
                        for column in columns:
                            yield _text(row.get(column))

        try:
            _vocabularies[key] = learned_vocab_size(arch, texts(), requested)
        except (OSError, ValueError, UnicodeDecodeError, csv.Error):
            return requested
    return _vocabularies[key]


def _text(value: Any) -> str:
    """A cell as the engine's tokenizer corpus reads it (word lists joined, chat messages
    as their contents)."""
    if isinstance(value, list):
        if all(isinstance(m, dict) for m in value):
            return "\n".join(str(m.get("content", "")) for m in value)
        return " ".join(str(v) for v in value)
    return str(value)


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
    adapter = _dict(stage.get("adapter"))
    if adapter:
        rank = _int(adapter.get("rank"), 8)
        targets = adapter.get("target_modules")
        targets = [str(t) for t in targets] if isinstance(targets, list) else None
        head = counted.head if "classification" in head_of(stage) else 0
        return lora_parameters(shape, rank, targets) + head
    freezing = _dict(stage.get("freezing"))
    if peak and freezing.get("unfreeze"):
        return counted.total
    frozen_layers = min(_int(freezing.get("layers"), 0), counted.layers)
    frozen = frozen_layers * counted.per_layer
    if freezing.get("embeddings") is True:
        frozen += counted.embeddings
    return counted.total - frozen


def activation_bytes(stage: dict[str, Any], shape: Shape, head: str) -> float:
    """Saved activations of one micro-batch: per layer that gradients pass through, plus
    the logits of a language-model head (and their softmax for the backward pass)."""
    batch = _int(stage.get("batch_size"), 16)
    seq = _int(_dict(stage.get("data")).get("max_length"), 128)
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
    freezing = _dict(stage.get("freezing"))
    layers = shape.layers
    unfreezes = bool(freezing.get("unfreeze"))
    if not stage.get("adapter") and freezing.get("embeddings") is True and not unfreezes:
        # Nothing below the first trainable layer needs its inputs kept for a gradient.
        layers -= min(_int(freezing.get("layers"), 0), layers)
    logits = batch * seq * shape.vocab * 4 * 2 if head in ("masked_lm", "causal_lm") else 0
    return per_layer_16bit * scale * layers + logits


def estimate(stages: list[Any], index: int, plan_dir: Path) -> MemoryEstimate | None:
    """The estimate of stage `index`, None if its model's size is not known yet."""
    stage = _dict(stages[index]) if 0 <= index < len(stages) else {}
    shape = stage_shape(stages, index, plan_dir)
    if shape is None:
        return None
    head = head_of(stage)
    counted = count(shape, head)
    trainable = trainable_count(stage, shape, counted)
    peak = trainable_count(stage, shape, counted, peak=True)
    adapter = _dict(stage.get("adapter"))
    if adapter.get("kind") == "qlora":
        base = counted.per_layer * counted.layers
        weights = base * QLORA_BYTES_PER_WEIGHT + (counted.total - base) * 2 + peak * 4
    elif adapter:
        weights = (counted.total + peak) * 4.0
    else:
        weights = counted.total * 4.0  # fp32 weights: bf16/fp16 are autocast, not stored
    optimizer_name = str(_dict(stage.get("optimizer")).get("name") or "adamw")
    momentum = _dict(stage.get("optimizer")).get("momentum")
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
        activations=activation_bytes(stage, shape, head),
        teacher=teacher,
    )


# -- the inspector's size line -----------------------------------------------------------------


@dataclass(frozen=True)
class SizeLine:
    """What the inspector says about a stage's size: a line, its tooltip, and the memory
    estimate behind it (None when nothing is trained or a size is not known)."""

    text: str
    tooltip: str = ""
    estimate: MemoryEstimate | None = None


def size_line(stages: list[Any], index: int, plan_dir: Path) -> SizeLine:
    """The size of stage `index` in words: the estimate of its model; an ensemble's
    members' sizes (it trains nothing); a mutual joint stage's members' models added up;
    else why the size is not known yet."""
    stage = _dict(stages[index]) if 0 <= index < len(stages) else {}
    if stage.get("kind") == "ensemble":
        return _ensemble_line(stages, index, plan_dir)
    if stage.get("kind") == "joint" and stage.get("coupling") == "mutual":
        return _mutual_line(stages, index, plan_dir)
    guess = estimate(stages, index, plan_dir)
    if guess is None:
        return SizeLine(f"Size: {unknown_size(stages, index, _dict(stage.get('model')))}")
    return SizeLine(guess.text(), guess.breakdown(), guess)


def _ensemble_line(stages: list[Any], index: int, plan_dir: Path) -> SizeLine:
    stage = _dict(stages[index])
    members = stage.get("members") if isinstance(stage.get("members"), list) else []
    parts = []
    for member in members:
        member = _dict(member)
        shape = source_shape(stages, index, member, plan_dir)
        name = source_name(member)
        if shape is None:
            parts.append(f"{name}: {unknown_size(stages, index, member, short=True)}")
        else:
            size = count(shape, "sequence_classification").total
            parts.append(f"{name} {parameters_text(size)} params")
    listed = ", ".join(parts) if parts else "no members yet"
    return SizeLine(
        f"Evaluation only, nothing is trained · {listed}",
        "An ensemble loads its members and scores them once: no gradients or optimizer "
        "states, each member's weights in memory.",
    )


def _mutual_line(stages: list[Any], index: int, plan_dir: Path) -> SizeLine:
    stage = _dict(stages[index])
    members = stage.get("members") if isinstance(stage.get("members"), list) else []
    guesses, parts, known = [], [], []
    for member in members:
        member = _dict(member)
        alone = {
            **stage,
            "kind": "train",
            "task": member.get("task") or "sequence_classification",
            "model": _dict(member.get("model")),
            "data": _dict(member.get("data")),
        }
        name = str(member.get("name") or "member")
        guess = estimate([*stages[:index], alone], index, plan_dir)
        if guess is None:
            reason = unknown_size([*stages[:index], alone], index, alone["model"], short=True)
            parts.append(f"{name}: {reason}")
        else:
            guesses.append(guess)
            parts.append(f"{name} {parameters_text(guess.parameters)}")
            known.append(f"{name} {parameters_text(guess.parameters)} params")
    if not members:
        return SizeLine("Size: no members yet")
    if len(guesses) < len(members):
        unknown = [p for p in parts if ": " in p]
        return SizeLine(f"Members' models: {', '.join(known + unknown)}")
    total = MemoryEstimate(
        parameters=sum(g.parameters for g in guesses),
        trainable=sum(g.trainable for g in guesses),
        weights=sum(g.weights for g in guesses),
        gradients=sum(g.gradients for g in guesses),
        optimizer=sum(g.optimizer for g in guesses),
        activations=sum(g.activations for g in guesses),
    )
    return SizeLine(
        f"{len(guesses)} models ({' + '.join(parts)}) · {total.text()}",
        "Every member trains its own model; their memory adds up.\n" + total.breakdown(),
        total,
    )


def source_name(source: dict[str, Any]) -> str:
    """A model source in a few words: its stage (and member), folder or Hub id."""
    if isinstance(source.get("from_stage"), str):
        member = source.get("member")
        return source["from_stage"] + (f"/{member}" if isinstance(member, str) else "")
    for key in ("builtin", "hub"):
        if isinstance(source.get(key), str):
            return source[key]
    if isinstance(source.get("path"), str):
        return Path(source["path"]).name or source["path"]
    return "?"


def unknown_size(
    stages: list[Any], index: int, source: dict[str, Any], short: bool = False, seen: int = 0
) -> str:
    """Why the size of the model `source` names in stage `index` is not known yet."""
    stage = _dict(stages[index]) if 0 <= index < len(stages) else {}
    if isinstance(source.get("hub"), str):
        return "known once loaded (Hub)" if short else f"known once {source['hub']} is loaded (Hub)"
    if isinstance(source.get("path"), str):
        return "known once saved" if short else f"known once {source['path']} holds a saved model"
    if isinstance(source.get("builtin"), str) and stage.get("kind") == "distill":
        teacher = _dict(stage.get("teacher"))
        why = unknown_size(stages, index, teacher, short=True, seen=seen + 1)
        return (
            f"the teacher's tokenizer is {why}"
            if short
            else (f"a built-in student takes the teacher's tokenizer; the teacher is {why}")
        )
    if isinstance(source.get("from_stage"), str) and seen < len(stages):
        names = [_dict(s).get("name") for s in stages]
        if source["from_stage"] in names[:index]:
            j = names.index(source["from_stage"])
            member = _member(_dict(stages[j]), source.get("member"))
            earlier = _dict(member.get("model")) if member else _dict(_dict(stages[j]).get("model"))
            return unknown_size(stages, j, earlier, short, seen + 1)
        return "unknown (no earlier stage of that name)"
    return "known once a model is chosen"
