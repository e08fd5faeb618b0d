"""The validator's problems said for a person reading the window: the stage by its name and
settings by their labels ("sentiment › Learning rate: must be greater than 0"), and the
schema's terse phrases in plain words. The paths stay in `stagelab validate`'s output and
in each line's tooltip, where a person editing the YAML needs them. Qt-free."""

from __future__ import annotations

import re

from app.model.schema_fields import LABELS
from engine.spec import Problem

_STAGE = re.compile(r"^stages\[(\d+)\]\.?(.*)$")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_AT_LEAST = re.compile(r"^must have at (least|most) (\d+) item\(s\)$")

# What a missing setting asks of the person, by its key.
_MISSING = {
    "data": "choose a data file or a Hub data set",
    "model": "choose the model to start from",
    "teacher": "choose the teacher model",
    "student": "choose the student model",
    "members": "add the members",
    "path": "choose a file",
    "name": "give it a name",
    "kind": "choose the stage kind",
}
# What a list holds, by its key, for "needs at least 2 …".
_ITEMS = {"members": ("member", "members"), "stages": ("stage", "stages")}
_WORDS = {"lr": "learning rate", "mlm": "masked LM", "eval": "evaluation", "hub": "Hub"}


def label(key: str) -> str:
    """A setting's name as the inspector shows it (`lr` → 'Learning rate')."""
    if key in LABELS:
        return LABELS[key]
    words = [_WORDS.get(word, word) for word in key.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def setting_words(sub_path: str) -> str:
    """A path inside a stage in words: 'members[1].data.path' → 'Member 2 › Data › Path'."""
    parts: list[str] = []
    for name, number in _PART.findall(sub_path):
        if number:
            if parts:
                singular = _ITEMS.get(_last_key(sub_path, len(parts)), (None,))[0]
                parts[-1] = f"{(singular or parts[-1]).capitalize()} {int(number) + 1}"
            else:
                parts.append(f"Item {int(number) + 1}")
        else:
            parts.append(label(name))
    return " › ".join(parts)


def _last_key(sub_path: str, count: int) -> str:
    names = [name for name, number in _PART.findall(sub_path) if name]
    return names[count - 1] if 0 < count <= len(names) else ""


def message_words(sub_path: str, message: str) -> str:
    """The validator's sentence in plain words."""
    key = ([name for name, _ in _PART.findall(sub_path) if name] or [""])[-1]
    if message.startswith("is required"):
        return _MISSING.get(key, "is not set; set it")
    bound = _AT_LEAST.match(message)
    if bound:
        count = int(bound.group(2))
        singular, plural = _ITEMS.get(key, ("entry", "entries"))
        return f"needs at {bound.group(1)} {count} {singular if count == 1 else plural}"
    return message


def stage_line(problem: Problem, sub_path: str) -> str:
    """A problem on its stage's card (the stage is known): 'Data: choose the data …'."""
    where = setting_words(sub_path)
    text = message_words(sub_path, problem.message)
    return f"{where}: {text}" if where else text[:1].upper() + text[1:]


def plan_line(problem: Problem, stage_names: list[str]) -> str:
    """A problem in the plan's list: the stage by its name, then the setting."""
    match = _STAGE.match(problem.path)
    if match:
        index, sub = int(match.group(1)), match.group(2)
        name = stage_names[index] if index < len(stage_names) else ""
        stage = f"'{name}'" if name else f"stage {index + 1} (unnamed)"
        where = setting_words(sub)
        text = message_words(sub, problem.message)
        return f"{stage} › {where}: {text}" if where else f"{stage}: {text}"
    if problem.path == "stages":
        return f"Stages: {message_words('stages', problem.message)}"
    if problem.path.startswith("sweep"):
        return f"Sweep › {setting_words(problem.path[len('sweep.') :])}: {problem.message}"
    where = setting_words(problem.path)
    text = message_words(problem.path, problem.message)
    return f"{where}: {text}" if where else text
