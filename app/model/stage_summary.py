"""The words on a stage card: where the model and data come from and the key settings.
Qt-free, so the summary is tested without a window."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from app.model.members import is_mutual, members_text, source_name


def model_text(source: Any) -> str:
    """'from stage X', 'bert-tiny (built-in)', 'hub: id' or 'folder: name'."""
    if not isinstance(source, dict):
        return "not set"
    if source.get("from_stage"):
        return f"from stage {source['from_stage']}"
    if source.get("builtin"):
        return f"{source['builtin']} (built-in, new)"
    if source.get("hub"):
        return f"hub: {source['hub']}"
    if source.get("path"):
        return f"folder: {PurePath(str(source['path'])).name}"
    return "not set"


def data_text(source: Any) -> str:
    """The data's file name or Hub name."""
    if not isinstance(source, dict):
        return "not set"
    if source.get("path"):
        return PurePath(str(source["path"])).name
    if source.get("hub"):
        return f"hub: {source['hub']}"
    return "not set"


def _get(stage: dict[str, Any], *keys: str, default: Any = None) -> Any:
    node: Any = stage
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def settings_text(stage: dict[str, Any]) -> str:
    """Length, batch, optimizer, schedule and precision in one line."""
    if stage.get("kind") in ("ensemble", "merge"):
        # Evaluated, never trained: only its combiner and batch matter.
        return f"evaluation only · batch {_get(stage, 'batch_size', default=16)}"
    if _get(stage, "max_steps"):
        length = f"{stage['max_steps']} steps"
    else:
        epochs = _num(_get(stage, "epochs", default=1))
        length = "1 epoch" if epochs == "1" else f"{epochs} epochs"
    batch = f"batch {_get(stage, 'batch_size', default=16)}"
    accum = _get(stage, "grad_accum", default=1)
    if accum != 1:
        batch += f"×{accum}"
    optimizer = f"{_get(stage, 'optimizer', 'name', default='adamw')} lr {_num(_get(stage, 'optimizer', 'lr', default=5e-4))}"
    schedule = _get(stage, "schedule", "name", default="linear")
    precision = _get(stage, "precision", default="fp32")
    return " · ".join(str(p) for p in (length, batch, optimizer, schedule, precision))


def extras_text(stage: dict[str, Any]) -> str:
    """Freezing, early stopping, augmentation and dropout, when set."""
    parts = []
    layers, embeddings = (
        _get(stage, "freezing", "layers", default=0),
        _get(stage, "freezing", "embeddings", default=False),
    )
    if layers or embeddings:
        frozen = " + ".join(
            p
            for p in (f"{layers} layers" if layers else "", "embeddings" if embeddings else "")
            if p
        )
        parts.append(f"frozen: {frozen}")
        every = _get(stage, "freezing", "unfreeze", "every_steps")
        if every:
            step = _get(stage, "freezing", "unfreeze", "layers", default=1)
            parts.append(f"unfreeze {step}/{every} steps")
    stop = _get(stage, "regularization", "early_stopping")
    if isinstance(stop, dict):
        parts.append(f"early stop on {stop.get('metric', 'loss')} ({stop.get('patience', 3)})")
    dropout = _get(stage, "regularization", "dropout")
    if dropout is not None:
        parts.append(f"dropout {_num(dropout)}")
    noise = [
        f"{label} {_num(_get(stage, 'augmentation', key))}"
        for key, label in (("mask_prob", "mask"), ("delete_prob", "delete"), ("swap_prob", "swap"))
        if _get(stage, "augmentation", key)
    ]
    if noise:
        parts.append("noise: " + ", ".join(noise))
    return " · ".join(parts)


def kind_text(stage: dict[str, Any]) -> str:
    """Kind and what it trains, e.g. 'train · sequence classification'."""
    kind = str(stage.get("kind", "?"))
    detail = stage.get("objective") or stage.get("task")
    if kind == "pretrain" and not detail:
        detail = "masked_lm"
    if kind == "train" and not detail:
        detail = "sequence_classification"
    return f"{kind} · {str(detail).replace('_', ' ')}" if detail else kind


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _sizes() -> dict[str, int]:
    from engine.spec.builtins import SIZES

    return {name: shape.layers for name, shape in SIZES.items()}


def output_layers(stages: list[Any], index: int, _seen: frozenset[int] = frozenset()) -> int | None:
    """Layers of the model a stage hands on, when the plan tells (built-in sizes, grow
    targets, cut students, and the chains of earlier stages between them)."""
    stage = stages[index] if 0 <= index < len(stages) else None
    if not isinstance(stage, dict) or index in _seen:
        return None
    if stage.get("kind") == "grow" and isinstance(stage.get("target_layers"), int):
        return stage["target_layers"]
    if stage.get("kind") == "distill" and isinstance(stage.get("student_layers"), int):
        return stage["student_layers"]
    return source_layers(stages, index, "model", _seen | {index})


def source_layers(
    stages: list[Any], index: int, field: str = "model", _seen: frozenset[int] = frozenset()
) -> int | None:
    """Layers of the model a stage starts from (`field`: model, or a distill's teacher)."""
    stage = stages[index] if 0 <= index < len(stages) else None
    source = stage.get(field) if isinstance(stage, dict) else None
    if not isinstance(source, dict):
        return None
    builtin = source.get("builtin")
    if isinstance(builtin, str):
        return _sizes().get(builtin.partition("-")[2])
    ref = source.get("from_stage")
    names = [s.get("name") if isinstance(s, dict) else None for s in stages]
    if isinstance(ref, str) and ref in names:
        return output_layers(stages, names.index(ref), _seen | {index})
    return None


def growth_text(stages: list[Any], index: int) -> str:
    """What a grow or distill stage makes of its model: '2 → 4 layers (stack, identity
    start)', 'student 2 layers ← teacher 4 layers'; '' for other kinds."""
    stage = stages[index] if 0 <= index < len(stages) else None
    if not isinstance(stage, dict):
        return ""

    def count(n: int | None) -> str:
        return "?" if n is None else str(n)

    if stage.get("kind") == "grow":
        method = stage.get("method") or "stack"
        detail = f"{method}, identity start" if stage.get("identity_init") else method
        target = stage.get("target_layers")
        return f"{count(source_layers(stages, index))} → {count(target if isinstance(target, int) else None)} layers ({detail})"
    if stage.get("kind") == "distill":
        student = output_layers(stages, index)
        teacher = source_layers(stages, index, "teacher")
        return f"student {_layers(count(student))} ← teacher {_layers(count(teacher))}"
    return ""


def _layers(n: str) -> str:
    return f"{n} layer" if n == "1" else f"{n} layers"


def _encoder(stage: dict[str, Any]) -> str:
    source = stage.get("model")
    if isinstance(source, dict) and source.get("from_stage"):
        return f"from {source_name(source)}"
    return model_text(source)


def model_line(stages: list[Any], index: int) -> str:
    """The card's model line: where the model comes from (and the teacher), what it becomes;
    the members of a joint or ensemble stage."""
    stage = stages[index] if 0 <= index < len(stages) else {}
    stage = stage if isinstance(stage, dict) else {}
    data = f"Data: {data_text(stage.get('data'))}"
    if stage.get("kind") == "distill":
        return (
            f"{growth_text(stages, index)} · teacher {model_text(stage.get('teacher'))}    {data}"
        )
    if stage.get("kind") in ("ensemble", "merge"):
        return f"{members_text(stage)}    {data}"
    if stage.get("kind") == "joint":
        text = members_text(stage)
        if not is_mutual(stage):  # the encoder's source; the members' data are their own
            text = text.replace("shared encoder", f"shared encoder {_encoder(stage)}", 1)
        return text
    model = f"Model: {model_text(stage.get('model'))}"
    growth = growth_text(stages, index)
    return f"{model} · {growth}    {data}" if growth else f"{model}    {data}"
