"""Which tokenizer the models of a `distill` or mutual `joint` stage read with, followed
through the plan, and the check that models whose outputs are tokens share one vocabulary.

A classifier or regressor reads the text with its own tokenizer: teacher and student (or
mutual members) compare label distributions or values, row by row, never token ids. Where
the outputs are tokens (masked or causal LM, token tagging) the models compare logits id by
id, so their vocabularies must be one. Validate compares them where it can read both:
tokenizers saved in local folders or in the local Hugging Face cache (their files, with
`json`). A tokenizer a built-in model learns from a stage's data, or one of a Hub id not in
the cache, is known only when the run makes or loads it: two different learned ones (or a
learned one and a folder's) are refused here, the rest is checked when the stage starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.spec.hub_cache import hub_snapshot
from engine.spec.problems import Problem
from engine.spec.settings import ModelSource
from engine.spec.vocab_files import folder_vocab, vocab_difference

# Tasks whose outputs are tokens: one vocabulary for the models that compare them.
TOKEN_OUTPUTS = ("masked_lm", "causal_lm", "causal_lm_sft", "token_classification")

# ("stage", i): learned from its data by built-in stage i; ("path", folder or cached Hub
# snapshot); ("hub", id) not in the cache.
Root = tuple[str, Any]


def _index(stages: list[Any], name: str | None) -> int | None:
    names = [s.name if s else None for s in stages]
    return names.index(name) if name in names else None


def source_root(
    stages: list[Any], index: int, source: ModelSource | None, plan_dir: Path | None, hops: int = 0
) -> Root | None:
    """Where the tokenizer of `source`, a model of stage `index`, comes from; None where the
    plan does not say (an unknown stage, a cycle)."""
    stage = stages[index] if 0 <= index < len(stages) else None
    if source is None or stage is None or hops > len(stages):
        return None
    if source.builtin:
        if stage.kind == "distill" and source is stage.model:
            # A built-in student takes its teacher's tokenizer.
            return source_root(stages, index, stage.teacher, plan_dir, hops + 1)
        if stage.kind == "joint" and stage.coupling == "mutual":
            # Built-in members take the first loaded member's, else one learned here.
            loaded = [m.model for m in stage.members if m.model and not m.model.builtin]
            if loaded:
                return source_root(stages, index, loaded[0], plan_dir, hops + 1)
        return ("stage", index)
    if source.path:
        path = Path(source.path).expanduser()
        if not path.is_absolute() and plan_dir is not None:
            path = plan_dir / path
        return ("path", str(path.resolve()) if path.is_absolute() else str(path))
    if source.hub:
        # A Hub id in the local cache is read as the folder of its snapshot.
        snapshot = hub_snapshot(source.hub, source.revision)
        return ("path", str(snapshot)) if snapshot is not None else ("hub", source.hub)
    before = _index(stages, source.from_stage)
    if before is None or stages[before] is None:
        return None
    return source_root(stages, before, output_model(stages[before], source), plan_dir, hops + 1)


def output_model(stage: Any, source: ModelSource) -> ModelSource | None:
    """The model source whose tokenizer a stage's output keeps (a joint stage: the named
    member's; shared_backbone: the stage's encoder)."""
    if stage.kind == "joint" and stage.coupling == "mutual":
        member = next((m for m in stage.members if m.name == source.member), None)
        return member.model if member else None
    return getattr(stage, "model", None)


def _where(stages: list[Any], root: Root) -> str:
    if root[0] == "stage":
        return f"stage '{stages[root[1]].name}' learns it from its data"
    return f"it comes from {root[1]}"


def vocabulary_difference(
    stages: list[Any], ours: Root | None, theirs: Root | None, names: tuple[str, str]
) -> str | None:
    """A sentence saying how two roots' vocabularies differ, or None when they are one or
    validate cannot tell (a Hub id, an unreadable folder: the stage checks at its start)."""
    if ours is None or theirs is None or ours == theirs:
        return None
    our_name, their_name = names
    if "stage" in (ours[0], theirs[0]):
        return f"{our_name}: {_where(stages, ours)}; {their_name}: {_where(stages, theirs)}"
    if ours[0] == theirs[0] == "path":
        mine, other = folder_vocab(Path(ours[1])), folder_vocab(Path(theirs[1]))
        if mine is not None and other is not None:
            return vocab_difference(mine, other, our_name, their_name)
    return None


def check_distill_vocabulary(
    stages: list[Any], i: int, stage: Any, plan_dir: Path | None
) -> list[Problem]:
    """One vocabulary where the distilled outputs are tokens; another tokenizer with
    `hidden_weight`, which compares hidden states position by position."""
    p = f"stages[{i}]"
    student = source_root(stages, i, stage.model, plan_dir)
    teacher = source_root(stages, i, stage.teacher, plan_dir)
    differ = vocabulary_difference(stages, student, teacher, ("the student", "the teacher"))
    if differ is None:
        return []
    task = stage.task.replace("_", " ")
    if stage.task in TOKEN_OUTPUTS:
        return [
            Problem(
                f"{p}.model",
                f"the student's vocabulary is not the teacher's: {differ}; a {task} "
                "student learns the teacher's outputs token by token, so both need one "
                "vocabulary: use a built-in student (it takes the teacher's tokenizer) or one "
                "descended from the teacher's model",
            )
        ]
    if stage.hidden_weight:
        return [
            Problem(
                f"{p}.hidden_weight",
                f"the student reads the text with another tokenizer than the teacher: "
                f"{differ}; hidden states are compared position by position, so set "
                "hidden_weight to 0 (the label distributions are still distilled)",
            )
        ]
    return []


def check_mutual_vocabulary(
    stages: list[Any], i: int, stage: Any, plan_dir: Path | None
) -> list[Problem]:
    """Mutual token tagging compares the members' outputs token by token: one vocabulary.
    (Sequence members each read the text with their own tokenizer.)"""
    if stage.coupling != "mutual" or any(m.task != "token_classification" for m in stage.members):
        return []
    loaded = [(k, m) for k, m in enumerate(stage.members) if m.model and not m.model.builtin]
    if len(loaded) < 2:
        return []
    _, first = loaded[0]
    theirs = source_root(stages, i, first.model, plan_dir)
    problems = []
    for k, member in loaded[1:]:
        ours = source_root(stages, i, member.model, plan_dir)
        differ = vocabulary_difference(
            stages, ours, theirs, (f"member '{member.name}'", f"member '{first.name}'")
        )
        if differ is not None:
            problems.append(
                Problem(
                    f"stages[{i}].members[{k}].model",
                    f"member '{member.name}' reads with another vocabulary than "
                    f"'{first.name}': {differ}; mutual token tagging compares the members' "
                    "outputs token by token, so give them models of one tokenizer (built-in "
                    "members take the loaded members' tokenizer)",
                )
            )
    return problems
