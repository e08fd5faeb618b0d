"""Editing a plan's sweep section in the window (no Qt): a default sweep for the plan, a
suggested range for a setting, and the section with one more setting swept. The editor
pushes the result as one undoable plan edit; validation (engine.spec) checks it like the
rest of the plan."""

from __future__ import annotations

import copy
import math
from typing import Any

from app.model.plan_document import UNSET
from engine.spec.eval_metrics import raw_eval_metrics

SWEEPABLE_KINDS = ("float", "int", "bool", "choice")


def default_sweep(data: dict[str, Any]) -> dict[str, Any]:
    """A sweep toward the last stage's accuracy (or loss when it is not evaluated): 8 trials,
    TPE, an empty space."""
    stages = data.get("stages") or []
    last = stages[-1] if stages else {}
    metrics = raw_eval_metrics(last)  # listed, else the task's defaults (as validated)
    metric = "accuracy" if "accuracy" in metrics else "loss"
    return {
        "objective": {
            "stage": last.get("name", ""),
            "metric": metric,
            "goal": "max" if metric == "accuracy" else "min",
        },
        "budget": {"trials": 8},
        "sampler": "tpe",
        "space": {},
    }


def settings_path(data: dict[str, Any], stage_index: int, keys: tuple[str, ...]) -> str:
    """'stages.<stage name>.<keys>' of a stage's setting."""
    name = data["stages"][stage_index].get("name") or str(stage_index)
    return ".".join(("stages", str(name), *keys))


def _round(value: float) -> float:
    """Two significant digits, so a suggested range reads well."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.2g}")


def suggested_distribution(
    kind: str,
    value: Any,
    *,
    default: Any = None,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
) -> dict[str, Any]:
    """A starting range for a setting around its value: a float on a log scale from a third
    to three times it (within its limits), an int two either side, every option of a choice
    or a flag."""
    current = default if value is UNSET or value is None else value
    if kind == "bool":
        return {"choice": [False, True]}
    if kind == "choice":
        return {"choice": list(choices) or [current]}
    if kind == "int":
        base = int(current or 0)
        low = max(int(minimum) if minimum is not None else 0, base - 2)
        high = base + 2 if maximum is None else min(int(maximum), base + 2)
        return {"choice": list(range(low, high + 1))} if high - low <= 4 else {"int": [low, high]}
    base = float(current) if current not in (None, 0) else 0.1
    if base > 0:
        low, high = _round(base / 3), _round(base * 3)
        if maximum is not None:
            high = min(high, maximum)
        return {"log_uniform": [low, high]} if low < high else {"uniform": [low, base]}
    return {"uniform": [base - 1.0, base + 1.0]}


def sweep_with_setting(
    data: dict[str, Any], stage_index: int, keys: tuple[str, ...], distribution: dict[str, Any]
) -> dict[str, Any]:
    """The plan's sweep section (a default one if it has none) with this setting swept."""
    sweep = copy.deepcopy(data.get("sweep")) or default_sweep(data)
    sweep.setdefault("space", {})[settings_path(data, stage_index, keys)] = distribution
    return sweep


# Settings a sweep rarely means (names, references, data, paths): left out of the form's list
# of settings; a path typed by hand still works and validation checks it.
_NOT_SWEPT = ("name", "kind", "description", "model", "data", "teacher", "members", "output")


def sweepable_settings(data: dict[str, Any]) -> dict[str, tuple[int, tuple[str, ...], Any]]:
    """Settings a sweep can vary, by path ('stages.<stage>.<keys>'): (stage index, keys,
    FieldSpec) of every number, flag or choice of each stage, in schema order."""
    from app.model.schema_fields import model_fields
    from engine.spec import STAGE_CLASSES

    found: dict[str, tuple[int, tuple[str, ...], Any]] = {}

    def walk(index: int, specs: list[Any], keys: tuple[str, ...]) -> None:
        for spec in specs:
            if not keys and spec.key in _NOT_SWEPT:
                continue
            if spec.kind == "group":
                walk(index, list(spec.fields), (*keys, spec.key))
            elif spec.kind in SWEEPABLE_KINDS:
                path = settings_path(data, index, (*keys, spec.key))
                found[path] = (index, (*keys, spec.key), spec)

    for index, stage in enumerate(data.get("stages") or []):
        kind = stage.get("kind") if isinstance(stage, dict) else None
        if isinstance(kind, str) and kind in STAGE_CLASSES:
            walk(index, model_fields(STAGE_CLASSES[kind]), ())
    return found


def suggested_for(data: dict[str, Any], path: str) -> dict[str, Any] | None:
    """A starting distribution for a settings path around the plan's value, or None when
    the path names no sweepable setting."""
    from app.model.plan_document import UNSET as _UNSET

    known = sweepable_settings(data).get(path)
    if known is None:
        return None
    index, keys, spec = known
    node: Any = data["stages"][index]
    for key in keys:
        node = node.get(key, _UNSET) if isinstance(node, dict) else _UNSET
    return suggested_distribution(
        spec.kind,
        node,
        default=spec.default,
        choices=spec.choices,
        minimum=spec.minimum,
        maximum=spec.maximum,
    )


DISTRIBUTIONS = ("log_uniform", "uniform", "int", "log_int", "choice")


def distribution_fields(dist: Any) -> dict[str, Any] | None:
    """A distribution as the form's fields: {'kind', 'low', 'high', 'step', 'choices'}
    (texts), or None when fields cannot say it exactly (then the form shows it as YAML)."""
    if not isinstance(dist, dict):
        return None
    kinds = [k for k in dist if k in DISTRIBUTIONS]
    if len(kinds) != 1 or set(dist) - {kinds[0], "step"}:
        return None
    kind, values = kinds[0], dist[kinds[0]]
    if "step" in dist and kind != "int":
        return None
    if not isinstance(values, list):
        return None
    if kind == "choice":
        texts = [_scalar_text(v) for v in values]
        if any(t is None for t in texts):
            return None
        return {"kind": kind, "low": "", "high": "", "step": "", "choices": ", ".join(texts)}
    if len(values) != 2 or not all(_is_number(v) for v in values):
        return None
    step = dist.get("step")
    if step is not None and not _is_number(step):
        return None
    return {
        "kind": kind,
        "low": _number_text(values[0]),
        "high": _number_text(values[1]),
        "step": "" if step is None else _number_text(step),
        "choices": "",
    }


def distribution_from_fields(
    kind: str, low: str, high: str, step: str = "", choices: str = ""
) -> dict[str, Any]:
    """The distribution of the form's fields; a field that is not a number is kept as its
    text, so the plan's validation names it."""
    if kind == "choice":
        return {"choice": [_parse_scalar(t) for t in choices.split(",") if t.strip()]}
    whole = kind in ("int", "log_int")
    dist: dict[str, Any] = {kind: [_parse_number(low, whole), _parse_number(high, whole)]}
    if kind == "int" and step.strip():
        dist["step"] = _parse_number(step, True)
    return dist


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_text(value: float) -> str:
    return repr(value)  # the shortest text that reads back as the same number


def _parse_number(text: str, whole: bool) -> Any:
    text = text.strip()
    try:
        return int(text) if whole else float(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return text
        return int(value) if whole and value.is_integer() else value


def _scalar_text(value: Any) -> str | None:
    """A choice as the comma list shows it, or None if the list could not give it back."""
    import yaml

    if not isinstance(value, (str, int, float, bool)):
        return None
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("...").strip()
    if "," in text or _parse_scalar(text) != value or type(_parse_scalar(text)) is not type(value):
        return None
    return text


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text.strip())
    except yaml.YAMLError:
        return text.strip()
    return value if isinstance(value, (str, int, float, bool)) else text.strip()
