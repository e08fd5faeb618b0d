"""The words on a stage card: where the model and data come from and the key settings.
Qt-free, so the summary is tested without a window."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any


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
    if _get(stage, "max_steps"):
        length = f"{stage['max_steps']} steps"
    else:
        length = f"{_get(stage, 'epochs', default=1):g} epochs".replace("1 epochs", "1 epoch")
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
