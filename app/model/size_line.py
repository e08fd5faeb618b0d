"""The inspector's size line for a stage: its memory estimate in a few words with the
breakdown as tooltip; an ensemble's members' sizes (it trains nothing); a mutual joint
stage's members added up; or why the size is not known yet. Qt-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.model.memory_estimate import MemoryEstimate, estimate, words
from app.model.model_size import parameters_text
from engine.spec.memory.estimate import member_estimates, summed
from engine.spec.memory.parameters import count
from engine.spec.memory.shapes import joint_member, mapping, source_shape


@dataclass(frozen=True)
class SizeLine:
    """What the inspector says about a stage's size: a line, its tooltip, and the memory
    estimate behind it (None when nothing is trained or a size is not known)."""

    text: str
    tooltip: str = ""
    estimate: MemoryEstimate | None = None


def size_line(stages: list[Any], index: int, plan_dir: Path) -> SizeLine:
    """The size of stage `index` in words: the estimate of its model; an ensemble's
    members' sizes (it trains nothing); a mutual joint stage's members' models added up;
    else why the size is not known yet."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    if stage.get("kind") == "ensemble":
        return _ensemble_line(stages, index, plan_dir)
    if stage.get("kind") == "joint" and stage.get("coupling") == "mutual":
        return _mutual_line(stages, index, plan_dir)
    guess = estimate(stages, index, plan_dir)
    if guess is None:
        return SizeLine(f"Size: {unknown_size(stages, index, mapping(stage.get('model')))}")
    return SizeLine(guess.text(), guess.breakdown(), guess)


def _ensemble_line(stages: list[Any], index: int, plan_dir: Path) -> SizeLine:
    stage = mapping(stages[index])
    members = stage.get("members") if isinstance(stage.get("members"), list) else []
    parts = []
    for member in members:
        member = mapping(member)
        shape = source_shape(stages, index, member, plan_dir)
        name = source_name(member)
        if shape is None:
            parts.append(f"{name}: {unknown_size(stages, index, member, short=True)}")
        else:
            size = count(shape, "sequence_classification").total
            parts.append(f"{name} {parameters_text(size)} params")
    listed = ", ".join(parts) if parts else "no members yet"
    return SizeLine(
        f"Evaluation only, nothing is trained · {listed}",
        "An ensemble loads its members and scores them once: no gradients or optimizer "
        "states, each member's weights in memory.",
    )


def _mutual_line(stages: list[Any], index: int, plan_dir: Path) -> SizeLine:
    members = member_estimates(stages, index, plan_dir)
    guesses, parts, known = [], [], []
    for name, alone, guess in members:
        if guess is None:
            reason = unknown_size([*stages[:index], alone], index, alone["model"], short=True)
            parts.append(f"{name}: {reason}")
        else:
            guesses.append(guess)
            parts.append(f"{name} {parameters_text(guess.parameters)}")
            known.append(f"{name} {parameters_text(guess.parameters)} params")
    if not members:
        return SizeLine("Size: no members yet")
    if len(guesses) < len(members):
        unknown = [p for p in parts if ": " in p]
        return SizeLine(f"Members' models: {', '.join(known + unknown)}")
    total = words(summed(guesses))
    return SizeLine(
        f"{len(guesses)} models ({' + '.join(parts)}) · {total.text()}",
        "Every member trains its own model; their memory adds up.\n" + total.breakdown(),
        total,
    )


def source_name(source: dict[str, Any]) -> str:
    """A model source in a few words: its stage (and member), folder or Hub id."""
    if isinstance(source.get("from_stage"), str):
        member = source.get("member")
        return source["from_stage"] + (f"/{member}" if isinstance(member, str) else "")
    for key in ("builtin", "hub"):
        if isinstance(source.get(key), str):
            return source[key]
    if isinstance(source.get("path"), str):
        return Path(source["path"]).name or source["path"]
    return "?"


def unknown_size(
    stages: list[Any], index: int, source: dict[str, Any], short: bool = False, seen: int = 0
) -> str:
    """Why the size of the model `source` names in stage `index` is not known yet."""
    stage = mapping(stages[index]) if 0 <= index < len(stages) else {}
    if isinstance(source.get("hub"), str):
        return "known once loaded (Hub)" if short else f"known once {source['hub']} is loaded (Hub)"
    if isinstance(source.get("path"), str):
        return "known once saved" if short else f"known once {source['path']} holds a saved model"
    if isinstance(source.get("builtin"), str) and stage.get("kind") == "distill":
        teacher = mapping(stage.get("teacher"))
        why = unknown_size(stages, index, teacher, short=True, seen=seen + 1)
        return (
            f"the teacher's tokenizer is {why}"
            if short
            else (f"a built-in student takes the teacher's tokenizer; the teacher is {why}")
        )
    if isinstance(source.get("from_stage"), str) and seen < len(stages):
        names = [mapping(s).get("name") for s in stages]
        if source["from_stage"] in names[:index]:
            j = names.index(source["from_stage"])
            member = joint_member(mapping(stages[j]), source.get("member"))
            earlier = (
                mapping(member.get("model")) if member else mapping(mapping(stages[j]).get("model"))
            )
            return unknown_size(stages, j, earlier, short, seen + 1)
        return "unknown (no earlier stage of that name)"
    return "known once a model is chosen"
