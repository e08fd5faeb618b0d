"""Validation problems as sentences with a path, e.g.
`stages[2].optimizer.lr: must be greater than 0 (got -0.1)`."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plan: where (`path`) and what to do (`message`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PlanInvalid(ValueError):
    """A plan has problems; `problems` lists all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(loc: tuple[Any, ...]) -> str:
    """('stages', 2, 'optimizer', 'lr') → 'stages[2].optimizer.lr'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _message(err: dict[str, Any]) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    simple = {
        "greater_than": "must be greater than {gt}",
        "greater_than_equal": "must be at least {ge}",
        "less_than": "must be less than {lt}",
        "less_than_equal": "must be at most {le}",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "int_type": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be text",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "too_short": "must have at least {min_length} item(s)",
        "too_long": "must have at most {max_length} item(s)",
        "string_too_short": "must not be empty",
        "string_too_long": "must be at most {max_length} characters",
        "finite_number": "must be a finite number",
    }
    if kind == "missing":
        return "is required; add it"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')} (got {_show(got)})"
    if kind == "union_tag_invalid":
        return (
            f"unknown stage kind {_show(ctx.get('tag'))}; use one of {ctx.get('expected_tags', '')}"
        )
    if kind == "union_tag_not_found":
        return (
            "needs a 'kind' (pretrain, train, distill, grow, preference, joint, ensemble or merge)"
        )
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in simple:
        text = simple[kind].format(**{k: _number(v) for k, v in ctx.items()})
        if kind in ("too_short", "too_long", "missing"):
            return text
        return f"{text} (got {_show(got)})"
    return f"{err['msg']} (got {_show(got)})"


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold directly (through Optional/Union/Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for a in typing.get_args(annotation) for c in _model_classes(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _item_annotation(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item_annotation(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) is list:
                return typing.get_args(arg)[0]
    if origin is list:
        return typing.get_args(annotation)[0]
    return None


def _owner_fields(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], tuple]:
    """Field names of the model that holds the last element of `loc`, and loc without
    discriminator tags (pydantic puts the union tag, e.g. 'train', into the location)."""
    current: list[type[BaseModel]] = [root]
    annotation: Any = None
    clean: list[Any] = []
    for part in loc[:-1]:
        if isinstance(part, int):
            annotation = _item_annotation(annotation)
            current = _model_classes(annotation) if annotation is not None else []
            clean.append(part)
            continue
        by_tag = [c for c in current if _tag_of(c) == part]
        if len(current) > 1 and by_tag:
            current = by_tag
            continue
        fields = [c.model_fields[part] for c in current if part in c.model_fields]
        if not fields:
            return [], (*clean, *loc[len(clean) :])
        annotation = fields[0].annotation
        current = _model_classes(annotation)
        clean.append(part)
    clean.append(loc[-1])
    names = sorted({n for c in current for n in c.model_fields})
    return names, tuple(clean)


def _tag_of(cls: type[BaseModel]) -> str | None:
    field = cls.model_fields.get("kind")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if len(args) == 1 else None


def _strip_tags(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    if not loc:
        return loc
    return _owner_fields(root, (*loc, "_"))[1][:-1]


def problems_from_validation_error(
    exc: ValidationError, root: type[BaseModel], limit: int | None = None
) -> list[Problem]:
    """Translate pydantic's errors (the first `limit` of them) into problems with readable
    paths and sentences."""
    problems = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            names, clean = _owner_fields(root, loc)
            key = loc[-1]
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            if names and not close:
                hint = f"; known settings here: {', '.join(names)}"
            # A key that is not plain text (a number, empty, with '.' or '[') is named in the message only:
            # in the path it would read as a list position or vanish.
            where = clean if _plain_key(key) else clean[:-1]
            problems.append(Problem(_path(where), f"unknown setting {_show(key)}{hint}"))
            continue
        problems.append(Problem(_path(_strip_tags(root, loc)), _message(err)))
    return problems


def _plain_key(key: Any) -> bool:
    return isinstance(key, str) and bool(key.strip()) and not any(c in key for c in ".[]")


def _path(loc: tuple[Any, ...]) -> str:
    """The path of a location; 'plan' for the top level."""
    return format_path(loc) or "plan"
