"""Settings of a plan by path: `stages.sentiment.optimizer.lr` (a stage by name or index,
then fields). Used by `stagelab clone --set`, the sweep space and the window's "sweep this
setting". Paths are checked against the schema, so a setting left at its default (absent
from the file) still has a path."""

from __future__ import annotations

import copy
import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from engine.spec.stages import STAGE_CLASSES

_INDEX = re.compile(r"^(\w[\w.-]*)?\[(\d+)\]$")


class PathError(ValueError):
    """A settings path that does not name a setting of the plan; the message says why."""


def split_path(path: str) -> list[str]:
    """'stages.sentiment.optimizer.lr' → ['stages', 'sentiment', 'optimizer', 'lr'];
    'stages[2].seed' → ['stages', '2', 'seed']. Stage names may hold dots only when
    written as an index."""
    parts: list[str] = []
    for piece in path.strip().split("."):
        match = _INDEX.match(piece)
        if match:
            if match.group(1):
                parts.append(match.group(1))
            parts.append(match.group(2))
        else:
            parts.append(piece)
    return parts


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `EarlyStopping | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def stage_position(data: dict[str, Any], ref: str) -> int:
    """Index of the stage named `ref` (or at index `ref`) in plain plan data.

    Raises:
        PathError: no such stage.
    """
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, list):
        raise PathError("the plan has no stages")
    for i, stage in enumerate(stages):
        if isinstance(stage, dict) and stage.get("name") == ref:
            return i
    if ref.isdigit() and int(ref) < len(stages):
        return int(ref)
    names = ", ".join(str(s.get("name")) for s in stages if isinstance(s, dict))
    raise PathError(f"no stage '{ref}' (stages: {names})")


def resolve(data: dict[str, Any], path: str) -> tuple[list[Any], Any]:
    """The location in plain plan data (['stages', 2, 'optimizer', 'lr']) and the schema
    field of a settings path.

    Raises:
        PathError: the path names no setting (unknown stage or field, or not a leaf).
    """
    parts = split_path(path)
    if len(parts) < 3 or parts[0] != "stages":
        raise PathError("a settings path starts with 'stages.<stage name>.' and names a setting")
    idx = stage_position(data, parts[1])
    kind = data["stages"][idx].get("kind")
    model: type[BaseModel] | None = STAGE_CLASSES.get(kind)
    if model is None:
        raise PathError(f"stage '{parts[1]}' has an unknown kind '{kind}'")
    loc: list[Any] = ["stages", idx]
    field = None
    for i, name in enumerate(parts[2:]):
        if model is None:
            raise PathError(f"'{'.'.join(parts[: i + 2])}' is a value, not a group of settings")
        field = model.model_fields.get(name)
        if field is None:
            known = ", ".join(model.model_fields)
            raise PathError(f"'{name}' is not a setting of {model.__name__} (settings: {known})")
        loc.append(name)
        model = _model_of(field.annotation)
    if model is not None:
        raise PathError(f"'{path}' is a group of settings; name one of them")
    return loc, field


def with_settings(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of plain plan data with settings changed by path (groups created as needed).

    Raises:
        PathError: a path names no setting.
    """
    out = copy.deepcopy(data)
    for path, value in changes.items():
        loc, _ = resolve(out, path)
        node = out
        for key in loc[:-1]:
            if isinstance(node, dict) and not isinstance(node.get(key), (dict, list)):
                node[key] = {}
            node = node[key]
        node[loc[-1]] = value
    return out
