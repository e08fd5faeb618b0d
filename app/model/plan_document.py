"""The plan being edited: plain data (exactly what the YAML holds, invalid values
included), its file, its problems from the same validator as `stagelab validate`, and
change events. Qt-free; undo commands in `app.qt.editor.undo` call these methods."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from app.model.events import Event
from engine.spec import PLAN_VERSION, Problem, parse_plan_text, plan_problems
from engine.spec.plan import dump_yaml, read_plan_file, save_text_atomically


class _Unset:
    """A setting left out of the plan, so it takes its default (one object, even copied)."""

    def __repr__(self) -> str:
        return "UNSET"

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: dict) -> _Unset:
        return self


UNSET = _Unset()
_STAGE_PATH = re.compile(r"^stages\[(\d+)\](?:\.(.*))?$")


class PlanDocument:
    """An editable plan.

    Events:
        changed(what, index): after every edit; `what` is 'stage' (one stage's settings),
            'stages' (stages added, removed or moved) or 'plan' (name, description or all).
        problems_changed(): after the problems were recomputed.
        file_changed(): the path or the unsaved-changes state changed.
    """

    def __init__(self, data: dict[str, Any], path: Path | None, plan_dir: Path) -> None:
        self.changed = Event()
        self.problems_changed = Event()
        self.file_changed = Event()
        self._data = data
        self.path = path
        self.plan_dir = plan_dir
        self._saved_text = self.to_yaml()  # a fresh plan counts as unchanged
        self.recorded = False  # an untitled plan kept by a run in the store
        self.problems: list[Problem] = _in_words(plan_problems(data, plan_dir))

    # -- creating ---------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path, *, as_template: bool = False) -> PlanDocument:
        """Open a plan file; a template opens as a new, untitled plan whose relative paths
        still point next to the template.

        Raises:
            PlanInvalid: if the file cannot be read or is not a YAML mapping (a plan with
                invalid settings opens, with its problems listed).
        """
        path = Path(path).resolve()
        data = parse_plan_text(read_plan_file(path), source=path.name)
        if as_template:
            return cls(data, None, path.parent)
        return cls(data, path, path.parent)

    @classmethod
    def from_text(cls, text: str, plan_dir: str | Path, name: str | None = None) -> PlanDocument:
        """An untitled plan from stored text (a cloned experiment's), its relative paths
        resolved against `plan_dir` as when it was recorded; `name` renames the plan (a
        clone is called what its experiment will be)."""
        data = parse_plan_text(text, source="plan")
        if name is not None:
            data["name"] = name
        return cls(data, None, Path(plan_dir))

    @classmethod
    def empty(cls, plan_dir: Path) -> PlanDocument:
        """A new plan with no stages yet."""
        return cls({"version": PLAN_VERSION, "name": "untitled", "stages": []}, None, plan_dir)

    # -- reading ----------------------------------------------------------------------------

    @property
    def data(self) -> dict[str, Any]:
        """The plan as plain data (do not modify; use the edit methods)."""
        return self._data

    @property
    def stages(self) -> list[dict[str, Any]]:
        """The stages as plain data."""
        stages = self._data.get("stages")
        return stages if isinstance(stages, list) else []

    def stage(self, index: int) -> dict[str, Any]:
        """A copy of one stage's data."""
        return copy.deepcopy(self.stages[index])

    def stage_names(self) -> list[str]:
        """Names of the stages in order ('' for a stage without a name)."""
        return [str(s.get("name", "")) if isinstance(s, dict) else "" for s in self.stages]

    def value(self, index: int, keys: tuple[str, ...]) -> Any:
        """The value at `keys` in a stage, or UNSET when the plan leaves it out."""
        node: Any = self.stages[index]
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return UNSET
            node = node[key]
        return node

    @property
    def is_valid(self) -> bool:
        """Whether the plan has no problems (Run is allowed)."""
        return not self.problems

    @property
    def is_dirty(self) -> bool:
        """Whether there are changes not saved to `path`."""
        return self._saved_text != self.to_yaml()

    @property
    def title(self) -> str:
        """File name, or the plan name for an untitled plan."""
        if self.path:
            return self.path.name
        kept = "recorded by its run" if self.recorded and not self.is_dirty else "unsaved"
        return f"{self._data.get('name') or 'untitled'} ({kept})"

    def mark_recorded(self) -> None:
        """The plan as it is now is kept in the store by a run: closing asks nothing
        (Save still writes it to a file)."""
        self._saved_text, self.recorded = self.to_yaml(), True
        self.file_changed.emit()

    @property
    def shown_problems(self) -> list[Problem]:
        """The problems to list: a plan with no stages yet is new, not wrong, so its
        'stages: must have at least 1 item(s)' is left to an empty-plan hint (Run stays
        disabled by `problems`)."""
        if self.stages or not isinstance(self._data.get("stages"), list):
            return self.problems
        return [p for p in self.problems if p.path != "stages"]

    def stage_problems(self, index: int) -> list[tuple[str, Problem]]:
        """Problems of one stage, each with its path inside the stage ('' for the stage)."""
        found = []
        for problem in self.problems:
            match = _STAGE_PATH.match(problem.path)
            if match and int(match.group(1)) == index:
                found.append((match.group(2) or "", problem))
        return found

    def to_yaml(self) -> str:
        """The plan as YAML text (key order kept)."""
        return dump_yaml(self._data)

    # -- editing ----------------------------------------------------------------------------

    def insert_stage(self, index: int, stage: dict[str, Any]) -> None:
        """Insert a stage so that it ends up at `index` (stages that are not a list, which
        the problems name, give way to a list)."""
        if not isinstance(self._data.get("stages"), list):
            self._data["stages"] = []
        self._data["stages"].insert(index, copy.deepcopy(stage))
        self._edited("stages", index)

    def remove_stage(self, index: int) -> dict[str, Any]:
        """Remove a stage and return its data."""
        stage = self._data["stages"].pop(index)
        self._edited("stages", index)
        return stage

    def move_stage(self, source: int, target: int) -> None:
        """Move a stage from position `source` to position `target` (after removal)."""
        stage = self._data["stages"].pop(source)
        self._data["stages"].insert(target, stage)
        self._edited("stages", target)

    def replace_stage(self, index: int, stage: dict[str, Any]) -> None:
        """Replace one stage's data whole."""
        self._data["stages"][index] = copy.deepcopy(stage)
        self._edited("stage", index)

    def set_value(self, index: int, keys: tuple[str, ...], value: Any) -> None:
        """Set one setting of a stage; UNSET removes it (and emptied groups), so it takes
        its default."""
        stage = copy.deepcopy(self.stages[index])
        set_in(stage, keys, value)
        self.replace_stage(index, stage)

    def rename_stage(self, index: int, name: Any) -> None:
        """Rename a stage and every `from_stage` that named it (model, teacher, members),
        so the stages that start from it still do. When the old name was not unique the
        references were ambiguous and are left as they are."""
        old = self.stage_names()[index]
        unique = self.stage_names().count(old) == 1 and bool(old)
        changed = {index}
        stages = self._data["stages"]
        stage = copy.deepcopy(stages[index])
        set_in(stage, ("name",), name)
        stages[index] = stage
        if unique and name is not UNSET:
            for i, other in enumerate(stages):
                if isinstance(other, dict) and _rename_refs(other, old, str(name)):
                    changed.add(i)
        self.problems = _in_words(plan_problems(self._data, self.plan_dir))
        for i in sorted(changed):  # per stage: views keep their selection
            self.changed.emit("stage", i)
        self.problems_changed.emit()
        self.file_changed.emit()

    def set_plan_value(self, key: str, value: Any) -> None:
        """Set a plan-level setting (name, description); UNSET removes it."""
        if value is UNSET:
            self._data.pop(key, None)
        else:
            self._data[key] = value
        self._edited("plan", -1)

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | Path | None = None) -> None:
        """Write the plan as YAML to `path` (default: its own file). Saving into another
        folder rewrites relative data and model paths, so they still name the same files.

        Raises:
            OSError: if the file cannot be written.
        """
        path = Path(path or self.path).resolve()
        if path.parent != self.plan_dir:
            self._data = rebase_paths(self._data, self.plan_dir, path.parent)
            self.plan_dir = path.parent
        text = self.to_yaml()
        save_text_atomically(text, path)
        self.path, self._saved_text = path, text
        self._edited("plan", -1)

    # -- internals --------------------------------------------------------------------------

    def _edited(self, what: str, index: int) -> None:
        # Problems first, so that views following `changed` show the new ones.
        self.problems = _in_words(plan_problems(self._data, self.plan_dir))
        self.changed.emit(what, index)
        self.problems_changed.emit()
        self.file_changed.emit()


_PAIR_ITEM = re.compile(r"^(.*\.betas)\[\d\]$")


def _in_words(problems: list[Problem]) -> list[Problem]:
    """The validator's problems, said for a person where its words are the schema's: one
    beta given is "betas: needs two numbers", not "betas[1]: is required; add it"."""
    out: list[Problem] = []
    for problem in problems:
        pair = _PAIR_ITEM.match(problem.path)
        if pair and problem.message.startswith("is required"):
            problem = Problem(pair.group(1), "needs two numbers, such as 0.9, 0.999")
        if problem not in out:
            out.append(problem)
    return out


def set_in(node: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    """Set `value` at `keys` in nested dicts, creating groups as needed; UNSET removes the
    key and any group left empty by that."""
    if value is UNSET:
        trail = [node]
        for key in keys[:-1]:
            child = trail[-1].get(key)
            if not isinstance(child, dict):
                return
            trail.append(child)
        trail[-1].pop(keys[-1], None)
        for parent, key in zip(reversed(trail[:-1]), reversed(keys[:-1]), strict=True):
            if parent[key] == {}:
                del parent[key]
        return
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = copy.deepcopy(value)


def stage_references(stage: dict[str, Any]) -> list[dict[str, Any]]:
    """The model sources of a stage that may name another stage (`from_stage`): its model,
    teacher, joint members' models and ensemble members."""
    sources = [stage.get("model"), stage.get("teacher")]
    members = stage.get("members")
    for member in members if isinstance(members, list) else []:
        if isinstance(member, dict):
            sources += [member, member.get("model")]
    return [s for s in sources if isinstance(s, dict) and "from_stage" in s]


def _rename_refs(stage: dict[str, Any], old: str, new: str) -> bool:
    found = False
    for source in stage_references(stage):
        if source["from_stage"] == old:
            source["from_stage"] = new
            found = True
    return found


def rebase_paths(data: dict[str, Any], old_dir: Path, new_dir: Path) -> dict[str, Any]:
    """A copy of plan data whose relative local paths are taken from `new_dir` instead of
    `old_dir` (as relative paths again, when the folders share a root)."""
    import os

    data = copy.deepcopy(data)
    for stage in data.get("stages") or []:
        for field in ("data", "model", "teacher"):
            source = stage.get(field) if isinstance(stage, dict) else None
            path = source.get("path") if isinstance(source, dict) else None
            if isinstance(path, str) and path and not Path(path).expanduser().is_absolute():
                target = os.path.normpath(old_dir / path)
                try:
                    source["path"] = Path(os.path.relpath(target, new_dir)).as_posix()
                except ValueError:  # another drive on Windows
                    source["path"] = target
    return data
