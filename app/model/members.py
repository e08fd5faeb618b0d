"""The members of `joint` and `ensemble` stages as a list a person edits: add, remove,
move, change one member's setting, drop an earlier stage in; the words of the list rows
and of the stage cards. Qt-free: every function returns new plan data (the stages
after the edit) that one undo command applies whole.

A joint member is a mapping (name, task, weight, lr_multiplier, metrics, data, and with
mutual coupling its own model); an ensemble member is a model source. Edits that
concern more than the list follow through: an ensemble's fixed `weights` (one per
member) move with their members, and renaming a joint member renames the later
`{from_stage: <joint>, member: <old>}` references to it.
"""

from __future__ import annotations

import copy
from pathlib import PurePath
from typing import Any

from app.model.plan_document import UNSET, set_in, stage_references
from app.model.stage_catalog import unique_name

MEMBER_KINDS = ("joint", "ensemble", "merge")
# Kinds whose members are model sources (trained models), not joint members.
SOURCE_MEMBER_KINDS = ("ensemble", "merge")
TASK_WORDS = {
    "sequence_classification": "classification",
    "token_classification": "token classification",
    "sequence_regression": "regression",
}


def members_of(stage: Any) -> list[Any]:
    """A stage's members ([] when the plan has none or not a list)."""
    members = stage.get("members") if isinstance(stage, dict) else None
    return members if isinstance(members, list) else []


def is_mutual(stage: Any) -> bool:
    """Whether a joint stage couples a model per member (else one shared encoder)."""
    return isinstance(stage, dict) and stage.get("coupling") == "mutual"


def joint_members(stages: list[Any]) -> dict[str, list[str]]:
    """Member names of every joint stage among `stages`, by stage name (for a model
    source that takes one member's model of a joint stage)."""
    found: dict[str, list[str]] = {}
    for stage in stages:
        if isinstance(stage, dict) and stage.get("kind") == "joint" and stage.get("name"):
            found[str(stage["name"])] = [
                str(m.get("name", "")) for m in members_of(stage) if isinstance(m, dict)
            ]
    return found


# -- editing ---------------------------------------------------------------------------------


def _with_members(stages: list[Any], index: int, members: list[Any]) -> list[Any]:
    stages = copy.deepcopy(stages)
    stages[index]["members"] = members
    return stages


def new_member(stages: list[Any], index: int) -> Any:
    """The member Add puts at the end of stage `index`'s list.

    Joint: `task-<letter>` classifying, with no data yet (the problems say so); with mutual
    coupling it starts from the same model as the last member. Ensemble: the latest
    earlier stage that is not a member yet (else the stage just before).
    """
    stage = stages[index]
    members = members_of(stage)
    if stage.get("kind") == "joint":
        taken = [str(m.get("name", "")) for m in members if isinstance(m, dict)]
        letters = [f"task-{chr(ord('a') + i)}" for i in range(26)]
        name = next((n for n in letters if n not in taken), unique_name("task", taken))
        member: dict[str, Any] = {"name": name, "task": "sequence_classification"}
        models = [m.get("model") for m in members if isinstance(m, dict) and m.get("model")]
        if is_mutual(stage):
            member["model"] = copy.deepcopy(models[-1]) if models else _start(stages, index)
        return member
    earlier = [str(s.get("name", "")) for s in stages[:index] if isinstance(s, dict)]
    used = {m.get("from_stage") for m in members if isinstance(m, dict)}
    free = [n for n in earlier if n and n not in used]
    if free:
        return {"from_stage": free[-1]}
    return _start(stages, index)


def _start(stages: list[Any], index: int) -> dict[str, Any]:
    previous = [s.get("name") for s in stages[:index] if isinstance(s, dict) and s.get("name")]
    return {"from_stage": previous[-1]} if previous else {"builtin": "bert-tiny"}


def add_member(stages: list[Any], index: int, member: Any = None) -> list[Any]:
    """Stages after adding `member` (default: `new_member`) at the end of stage `index`."""
    member = new_member(stages, index) if member is None else member
    after = _with_members(stages, index, [*members_of(stages[index]), copy.deepcopy(member)])
    weights = after[index].get("weights")
    if isinstance(weights, list) and len(weights) == len(members_of(stages[index])):
        weights.append(1.0)  # one fixed weight per member: the new one weighs like 1
    return after


def remove_member(stages: list[Any], index: int, row: int) -> list[Any]:
    """Stages after removing member `row` of stage `index`."""
    members = copy.deepcopy(members_of(stages[index]))
    del members[row]
    after = _with_members(stages, index, members)
    weights = after[index].get("weights")
    if isinstance(weights, list) and len(weights) == len(members) + 1:
        del weights[row]
    return after


def move_member(stages: list[Any], index: int, row: int, target: int) -> list[Any]:
    """Stages after moving member `row` of stage `index` to position `target`."""
    members = copy.deepcopy(members_of(stages[index]))
    members.insert(target, members.pop(row))
    after = _with_members(stages, index, members)
    weights = after[index].get("weights")
    if isinstance(weights, list) and len(weights) == len(members):
        weights.insert(target, weights.pop(row))
    return after


def set_member_value(
    stages: list[Any], index: int, row: int, keys: tuple[str, ...], value: Any
) -> list[Any]:
    """Stages after setting `keys` of member `row` (UNSET removes the setting; `()` replaces
    the member whole). Renaming a joint member renames the later references to it."""
    members = copy.deepcopy(members_of(stages[index]))
    if not keys:
        members[row] = copy.deepcopy(value)
    else:
        member = members[row] if isinstance(members[row], dict) else {}
        set_in(member, keys, value)
        members[row] = member
    after = _with_members(stages, index, members)
    old = members_of(stages[index])[row]
    if keys == ("name",) and isinstance(old, dict) and value is not UNSET:
        stage_name = stages[index].get("name")
        for stage in after[index + 1 :]:
            for source in _sources(stage):
                if source.get("from_stage") == stage_name and source.get("member") == old.get(
                    "name"
                ):
                    source["member"] = value
    return after


def _sources(stage: Any) -> list[dict[str, Any]]:
    return stage_references(stage) if isinstance(stage, dict) else []


def drop_refusal(stages: list[Any], index: int, source_row: int) -> str:
    """Why stage `source_row` cannot become a member of stage `index` ('' when it can)."""
    stage = stages[index] if 0 <= index < len(stages) else None
    if not isinstance(stage, dict) or stage.get("kind") not in SOURCE_MEMBER_KINDS:
        return "Only an ensemble's or a merge's members take stages dropped on them"
    if not 0 <= source_row < len(stages) or not isinstance(stages[source_row], dict):
        return "That stage is not in this plan"
    name = str(stages[source_row].get("name") or "")
    if source_row >= index:
        return (
            f"Stage '{name}' does not come before '{stage.get('name')}': an {stage['kind']} "
            "stage takes earlier stages"
        )
    if not name:
        return "That stage has no name to refer to"
    return ""


def drop_stage(stages: list[Any], index: int, source_row: int) -> list[Any]:
    """Stages after adding earlier stage `source_row` as a member of ensemble `index`."""
    source = stages[source_row]
    member: dict[str, Any] = {"from_stage": str(source.get("name"))}
    names = members_of(source) if source.get("kind") == "joint" else []
    if names and isinstance(names[0], dict) and names[0].get("name"):
        member["member"] = str(names[0]["name"])  # a joint stage: name one member's model
    return add_member(stages, index, member)


# -- words -----------------------------------------------------------------------------------


def source_name(source: Any) -> str:
    """A model source in a word: the stage (and member), built-in, Hub id or folder."""
    if not isinstance(source, dict):
        return "?"
    if source.get("from_stage"):
        member = source.get("member")
        return f"{source['from_stage']}/{member}" if member else str(source["from_stage"])
    if source.get("builtin"):
        return f"{source['builtin']} (new)"
    if source.get("hub"):
        return str(source["hub"])
    if source.get("path"):
        return PurePath(str(source["path"])).name or str(source["path"])
    return "not set"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def member_text(stage: Any, member: Any) -> str:
    """One row of the members list: 'sentiment · classification · w 1 · reviews.csv'."""
    if isinstance(stage, dict) and stage.get("kind") in SOURCE_MEMBER_KINDS:
        return source_name(member)
    if not isinstance(member, dict):
        return "(not a member mapping)"
    parts = [str(member.get("name") or "(no name)")]
    task = member.get("task", "sequence_classification")
    parts.append(TASK_WORDS.get(task, str(task)))
    parts.append(f"w {_num(member.get('weight', 1))}")
    data = member.get("data")
    path = data.get("path") or data.get("hub") if isinstance(data, dict) else None
    parts.append(PurePath(str(path)).name if path else "no data")
    return " · ".join(parts)


def members_text(stage: Any) -> str:
    """The members on a stage card: 'shared encoder · sentiment (classification, w 1) +
    intensity (regression, w 0.5)', 'members: a, b, c · vote'."""
    members = members_of(stage)
    if stage.get("kind") in ("ensemble", "merge"):
        names = ", ".join(source_name(m) for m in members) or "none yet"
        how = stage.get("combiner", "average")
        if stage.get("kind") == "merge":
            how = f"merged by {str(stage.get('method', 'average')).replace('_', ' ')}"
        return f"members: {names} · {how}"
    head = "mutual learning" if is_mutual(stage) else "shared encoder"
    parts = []
    for member in members:
        if not isinstance(member, dict):
            parts.append("?")
            continue
        task = TASK_WORDS.get(member.get("task", "sequence_classification"), "?")
        task = task.replace("token classification", "tokens")
        parts.append(f"{member.get('name', '?')} ({task}, w {_num(member.get('weight', 1))})")
    return f"{head} · {' + '.join(parts) or 'no members yet'}"
