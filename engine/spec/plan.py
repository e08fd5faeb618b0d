"""The stage plan: a YAML/JSON document listing stages, loaded, saved and validated whole."""

# No `from __future__ import annotations`: see engine/spec/settings.py.

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from engine.spec.checks import check_files, check_partial, check_plan
from engine.spec.problems import (
    PlanInvalid,
    Problem,
    format_path,
    problems_from_validation_error,
)
from engine.spec.settings import Settings
from engine.spec.stages import Stage
from engine.spec.sweep import Sweep

PLAN_VERSION = 1
# A plan is a small text file (the demo: 3 kB); anything larger is some other file opened
# by mistake, and refused before parsing.
MAX_PLAN_BYTES = 5_000_000
# At most this many problems are listed; the rest are counted in one last line.
MAX_PROBLEMS = 200
# A plan nests a few levels (stages[0].freezing.unfreeze.layers is 5); deeper data is no
# plan, and the window's copies and YAML writer would recurse on it.
MAX_NESTING = 50

# libyaml (C) when PyYAML was built with it: ~20× faster than the pure-Python classes, and
# the window parses and writes the plan while it starts.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(data: Any) -> str:
    """YAML text of plain data, key order kept, the way plan files are written."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class Plan(Settings):
    """A multi-stage training plan."""

    version: Literal[1] = Field(PLAN_VERSION, description="Plan format version.")
    name: str = Field(..., min_length=1, max_length=200, description="Name of the plan.")
    description: str = Field("", description="What the plan is for.")
    stages: list[Stage] = Field(..., min_length=1, description="Stages, trained in order.")
    sweep: Sweep | None = Field(
        None,
        description="Search settings toward an objective with `stagelab sweep` "
        "(docs/sweeps.md); a plain run ignores it.",
    )

    def stage_index(self, name: str) -> int:
        """Position of the stage called `name`.

        Raises:
            KeyError: if no stage has that name.
        """
        for i, stage in enumerate(self.stages):
            if stage.name == name:
                return i
        raise KeyError(name)


# Keys a reader looks for first on a stage; the rest follow in schema order.
_STAGE_KEY_ORDER = ("name", "kind", "description", "objective", "task", "model", "teacher", "data")


def plan_to_data(plan: Plan) -> dict[str, Any]:
    """Plain data of a plan, leaving out settings at their defaults (kind and name stay)."""
    data = plan.model_dump(mode="json", exclude_defaults=True)
    stages = []
    for model, stage in zip(plan.stages, data["stages"], strict=True):
        _drop_default_metrics(model, stage)
        first = {k: stage[k] for k in _STAGE_KEY_ORDER if k in stage}
        stages.append(_whole_numbers({**first, **stage}))
    # The version is written even though it is the default, so old files stay readable.
    return {"version": plan.version, **data, "stages": stages}


def _drop_default_metrics(model: Any, stage: dict[str, Any]) -> None:
    """Leave out the eval metrics that validation filled in from the task's defaults
    (engine.spec.eval_metrics): the plan stays as written, and follows its task."""
    if "metrics" in model.eval.model_fields_set or not isinstance(stage.get("eval"), dict):
        return
    stage["eval"].pop("metrics", None)
    if not stage["eval"]:
        del stage["eval"]


def _whole_numbers(value: Any) -> Any:
    """3.0 → 3 for readability; loading turns it back into the same float."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def dump_plan(plan: Plan, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """Serialise a plan as YAML (default) or JSON text."""
    data = plan_to_data(plan)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return dump_yaml(data)


def parse_plan_text(text: str, *, source: str = "plan") -> dict[str, Any]:
    """Parse YAML or JSON text (JSON is YAML) into plain data.

    Raises:
        PlanInvalid: if the text is too large, not YAML or not a YAML mapping.
    """
    if len(text) > MAX_PLAN_BYTES:
        raise PlanInvalid([Problem(source, _too_large(len(text)))])
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise PlanInvalid(
            [Problem(source, f"{where}not valid YAML or JSON ({reason}); fix the syntax")]
        ) from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        # The pure-Python loader (PyYAML without libyaml) recurses on deep nesting, and a
        # few scalars (e.g. huge timestamps) fail in their constructors.
        raise PlanInvalid(
            [Problem(source, f"cannot be read as YAML ({type(exc).__name__}); fix the syntax")]
        ) from None
    if not isinstance(data, dict):
        raise PlanInvalid([Problem(source, _not_a_mapping(data))])
    deep = too_deep(data)
    if deep is not None:
        raise PlanInvalid([Problem(source, f"at {format_path(deep) or 'the top'}: {_DEEP}")])
    return data


_DEEP = f"nested more than {MAX_NESTING} levels deep; a plan needs only a few, check the file"


def too_deep(data: Any) -> tuple[Any, ...] | None:
    """The location of the first value nested deeper than MAX_NESTING, if any."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        node, loc = stack.pop()
        if len(loc) > MAX_NESTING:
            return loc
        if isinstance(node, dict):
            stack += [(v, (*loc, k)) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, (*loc, i)) for i, v in enumerate(node)]
    return None


def _not_a_mapping(data: Any) -> str:
    if data is None:
        return "is empty; a plan is a mapping with 'name' and 'stages' (see docs/plan-format.md)"
    if isinstance(data, list):
        got = "a list"
    elif isinstance(data, str):
        got = f"the text {data[:40]!r}"
    else:
        got = repr(data)[:40]
    return f"must be a mapping with 'name' and 'stages' at the top level (got {got})"


def _too_large(size: int) -> str:
    return (
        f"is {size / 1e6:.1f} MB, larger than a plan can be ({MAX_PLAN_BYTES // 1_000_000} MB); "
        "check that this is a plan file and not a data file"
    )


def read_plan_file(path: str | Path) -> str:
    """The text of a plan file.

    Raises:
        PlanInvalid: if the file is missing, a folder, unreadable, too large or not UTF-8,
            with one sentence saying what to do.
    """
    path = Path(path)
    where = str(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise PlanInvalid([Problem(where, "is a folder; name a plan file (YAML or JSON)")])
        if size > MAX_PLAN_BYTES:
            raise PlanInvalid([Problem(where, _too_large(size))])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanInvalid([Problem(where, "file not found; check the path")]) from None
    except PermissionError:
        raise PlanInvalid(
            [Problem(where, "cannot be read (permission denied); check the file's permissions")]
        ) from None
    except OSError as exc:
        raise PlanInvalid(
            [Problem(where, f"cannot be read ({exc.strerror or exc}); check the path")]
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanInvalid(
            [
                Problem(
                    where,
                    f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start}); "
                    "save the plan as UTF-8, or check that this is a plan file",
                )
            ]
        ) from None


def plan_from_data(data: dict[str, Any], plan_dir: Path | None = None) -> Plan:
    """Validate plain data into a plan, reporting every problem at once.

    Args:
        data: the plan as plain data (parsed YAML or JSON).
        plan_dir: the plan file's folder; when given, local paths must exist there.

    Raises:
        PlanInvalid: with every problem found, each with its path.
    """
    files = check_files(data, plan_dir) if plan_dir is not None else []
    deep = too_deep(data)
    if deep is not None:
        files.insert(0, Problem(format_path(deep[: MAX_NESTING + 1]), _DEEP))
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation_error(exc, Plan, limit=MAX_PROBLEMS + 1)
        more = exc.error_count() - len(problems)
        problems += check_partial(data, plan_dir)
        raise PlanInvalid(_capped(_unique(problems + files), more)) from None
    problems = check_plan(plan, plan_dir) + files
    if plan.sweep is not None and not problems:
        from engine.spec.sweep_checks import sweep_problems

        problems += sweep_problems(data, plan, plan_dir)
    if problems:
        raise PlanInvalid(_capped(problems, 0))
    return plan


def _capped(problems: list[Problem], more: int) -> list[Problem]:
    """At most MAX_PROBLEMS problems, and a last one counting those left out."""
    more += max(0, len(problems) - MAX_PROBLEMS)
    if more <= 0:
        return problems
    return [
        *problems[:MAX_PROBLEMS],
        Problem("plan", f"{more} more problem(s) not listed; fix the ones above first"),
    ]


def plan_problems(data: Any, plan_dir: Path | None = None) -> list[Problem]:
    """Every problem of plan data, as `stagelab validate` reports them (none: valid)."""
    if not isinstance(data, dict):
        return [Problem("plan", _not_a_mapping(data))]
    try:
        plan_from_data(data, plan_dir)
    except PlanInvalid as exc:
        return list(exc.problems)
    return []


def load_plan_text(text: str, *, source: str = "plan", plan_dir: Path | None = None) -> Plan:
    """Parse and validate plan text (YAML or JSON).

    Raises:
        PlanInvalid: with every problem found.
    """
    return plan_from_data(parse_plan_text(text, source=source), plan_dir)


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file.

    Raises:
        PlanInvalid: if the file is missing, unreadable or invalid.
    """
    path = Path(path)
    text = read_plan_file(path)
    return load_plan_text(text, source=path.name, plan_dir=path.resolve().parent)


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write a plan as YAML, or JSON when the file name ends in .json.

    The file is written to a temporary name and renamed, so a crash never leaves half a plan.
    """
    path = Path(path)
    save_text_atomically(
        dump_plan(plan, "json" if path.suffix.lower() == ".json" else "yaml"), path
    )


def save_text_atomically(text: str, path: Path) -> None:
    """Write text to a temporary name beside `path`, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(p)
    return out
