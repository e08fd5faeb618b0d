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

from engine.spec import relevance

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
    "samples": "Sample outputs",
    "samples_max_new_tokens": "Sample length (new tokens)",
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


# Which settings and metrics apply to a stage (kind, task, and the choices they depend
# on) come from one table shared with the validator: engine.spec.relevance.
APPLIES_WHEN = relevance.APPLIES_WHEN


def shown(stage: Any, keys: tuple[str, ...], is_set: bool) -> bool:
    """Whether the inspector shows the setting at `keys` of a raw stage: it applies to the
    stage's kind, task and choices, or the plan sets it (`is_set`), so that a stray value
    can still be seen and cleared."""
    if is_set:
        return True
    return relevance.applies(stage if isinstance(stage, dict) else {}, keys)


def offered_metrics(stage: Any, listed: Any) -> tuple[str, ...]:
    """The eval metrics the inspector offers a raw stage: those that apply to its task, and
    any the plan lists that do not (the validator reports those; they can be unticked)."""
    stage = stage if isinstance(stage, dict) else {}
    allowed = relevance.stage_metrics(stage)
    extra = {m for m in listed if isinstance(m, str)} if isinstance(listed, list) else set()
    from engine.spec.settings import EVAL_METRICS

    return tuple(m for m in EVAL_METRICS if m in allowed or m in extra)


def short_label(keys: tuple[str, ...]) -> str:
    """A setting in a few words for an undo step: 'unfreeze every N steps', 'learning
    rate' (not 'freezing.unfreeze.every_steps')."""
    words = [LABELS.get(k, k.replace("_", " ")) for k in keys[-2:]]
    if len(keys) == 1 or words[-1].lower() not in GENERIC:
        words = words[-1:]
    text = " ".join(words).lower()
    return text if len(text) <= 32 else text[:31] + "…"


GENERIC = {"every n steps", "name", "layers", "metric", "path", "mode", "embeddings"}
