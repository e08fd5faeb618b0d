"""Editor descriptions generated from the plan schema (types, ranges, choices, help), so
the inspector always matches what the validator accepts. Qt-free."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

# Editor kinds: choice, bool, int, float, text, pair (two floats), metrics (several
# choices), words (list of text), group (nested settings), yaml (anything else).


LABELS = {
    "mlm_probability": "Masking rate",
    "max_grad_norm": "Clip grad norm",
    "grad_accum": "Grad accumulation",
    "log_every_steps": "Log every N steps",
    "lr": "Learning rate",
    "eps": "Epsilon",
    "every_steps": "Every N steps",
    "mask_prob": "Mask rate",
    "delete_prob": "Delete rate",
    "swap_prob": "Swap rate",
    "l1": "L1 penalty",
    "min_lr_ratio": "Floor (share of peak)",
    "eval_ratio": "Held out for eval",
    "max_length": "Max tokens",
    "limit": "Use at most N rows",
}


@dataclass(frozen=True)
class FieldSpec:
    """How to edit one setting."""

    key: str
    label: str
    kind: str
    help: str
    default: Any = None
    required: bool = False
    optional: bool = False  # None is allowed (left empty)
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    group: type[BaseModel] | None = None
    fields: tuple[FieldSpec, ...] = field(default=())
    empty: str = ""  # what an empty optional field means, when not "none" (e.g. "auto")

    def range_text(self) -> str:
        """The allowed range in words, e.g. '> 0 and ≤ 10'."""
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.min_exclusive else '≥'} {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"{'<' if self.max_exclusive else '≤'} {self.maximum:g}")
        return " and ".join(parts)


def model_fields(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[FieldSpec]:
    """Editors for the fields of a settings model, in schema order."""
    return [field_spec(name, model, skip) for name in model.model_fields if name not in skip]


def field_spec(name: str, model: type[BaseModel], skip: tuple[str, ...] = ()) -> FieldSpec:
    """Editor for one field of a settings model."""
    info = model.model_fields[name]
    annotation = info.annotation
    optional = False
    args = typing.get_args(annotation)
    if _is_union(annotation) and type(None) in args:
        optional = True
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else annotation
    default = None if info.default is PydanticUndefined else info.default
    if info.default_factory is not None:
        default = info.default_factory()
    spec: dict[str, Any] = {
        "key": name,
        "label": LABELS.get(name, name.replace("_", " ").capitalize()),
        "help": info.description or "",
        "default": default.model_dump() if isinstance(default, BaseModel) else default,
        "required": info.is_required(),
        "optional": optional,
        "empty": (info.json_schema_extra or {}).get("empty", ""),
    }
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Gt):
            spec.update(minimum=meta.gt, min_exclusive=True)
        elif isinstance(meta, annotated_types.Ge):
            spec.update(minimum=meta.ge)
        elif isinstance(meta, annotated_types.Lt):
            spec.update(maximum=meta.lt, max_exclusive=True)
        elif isinstance(meta, annotated_types.Le):
            spec.update(maximum=meta.le)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return FieldSpec(kind="choice", choices=tuple(typing.get_args(annotation)), **spec)
    if annotation is bool:
        return FieldSpec(kind="bool", **spec)
    if annotation is int:
        return FieldSpec(kind="int", **spec)
    if annotation is float:
        return FieldSpec(kind="float", **spec)
    if annotation is str:
        return FieldSpec(kind="text", **spec)
    if origin is tuple:
        return FieldSpec(kind="pair", **spec)
    if origin is list and typing.get_args(annotation) == (str,):
        if name == "metrics":
            from engine.spec.settings import EVAL_METRICS

            return FieldSpec(kind="metrics", choices=EVAL_METRICS, **spec)
        return FieldSpec(kind="words", **spec)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        sub = tuple(model_fields(annotation, skip))
        return FieldSpec(kind="group", group=annotation, fields=sub, **spec)
    return FieldSpec(kind="yaml", **spec)


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def parse_number(text: str, kind: str) -> Any:
    """The number typed into a field, or the text itself when it is not one (the
    validator then says what is wrong, and nothing typed is lost)."""
    text = text.strip()
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        pass
    if kind == "int":
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() else number
    return text


def format_value(value: Any) -> str:
    """A setting's value as shown in a text field."""
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


# Settings that only mean something for one choice of another setting: the inspector
# shows them only then (or while the plan sets them, so a stray value can be cleared).
APPLIES_WHEN: dict[tuple[str, ...], tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    ("optimizer", "betas"): (("optimizer", "name"), "adamw", ("adam", "adamw")),
    ("optimizer", "eps"): (("optimizer", "name"), "adamw", ("adam", "adamw")),
    ("optimizer", "momentum"): (("optimizer", "name"), "adamw", ("sgd",)),
    ("optimizer", "nesterov"): (("optimizer", "name"), "adamw", ("sgd",)),
    ("schedule", "cycles"): (("schedule", "name"), "linear", ("cosine_restarts",)),
    ("schedule", "step_size"): (("schedule", "name"), "linear", ("step",)),
    ("schedule", "gamma"): (("schedule", "name"), "linear", ("step",)),
    # joint stages
    ("sampling_temperature",): (("sampling",), "all", ("temperature",)),
    ("mutual_weight",): (("coupling",), "shared_backbone", ("mutual",)),
    ("mutual_temperature",): (("coupling",), "shared_backbone", ("mutual",)),
}


def applies(keys: tuple[str, ...], value_of: Any) -> bool:
    """Whether the setting at `keys` takes effect, given `value_of(keys)` (the plan's
    value, or a non-string when it is left out and takes its default)."""
    rule = APPLIES_WHEN.get(keys)
    if rule is None:
        return True
    chooser, default, choices = rule
    chosen = value_of(chooser)
    return (chosen if isinstance(chosen, str) else default) in choices


def short_label(keys: tuple[str, ...]) -> str:
    """A setting in a few words for an undo step: 'unfreeze every N steps', 'learning
    rate' (not 'freezing.unfreeze.every_steps')."""
    words = [LABELS.get(k, k.replace("_", " ")) for k in keys[-2:]]
    if len(keys) == 1 or words[-1].lower() not in GENERIC:
        words = words[-1:]
    text = " ".join(words).lower()
    return text if len(text) <= 32 else text[:31] + "…"


GENERIC = {"every n steps", "name", "layers", "metric", "path", "mode", "embeddings"}
