"""Where the inspector shows each problem of a stage: under the field it names, else the
nearest group, model or data picker above it, the members' table for a member's problem,
and the rest under the stage's header. Qt-free."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

# The data settings the data picker shows (the others are fields of the Data group).
DATA_PICKER_KEYS = ("path", "hub", "text_column", "label_column")
Keys = tuple[str, ...]


def owner_of(keys: Keys, owners: Collection[Keys]) -> Keys:
    """The field, group or picker in `owners` that a problem at `keys` belongs to."""
    for n in range(len(keys), 0, -1):
        head = keys[:n]
        if head in owners or head in (("model",), ("teacher",)):
            return head
        if head[:1] == ("data",) and n == 2 and head[1] in DATA_PICKER_KEYS:
            return head
    return keys


def problems_by_owner(
    problems: Iterable[tuple[str, Any]], owners: Collection[Keys], members: bool
) -> tuple[dict[Keys, list[str]], list[tuple[str, str]]]:
    """A stage's (sub-path, problem) pairs as messages by owner, and, when the stage has a
    members table (`members`), the members' problems as (sub-path, message) apart."""
    found: dict[Keys, list[str]] = {}
    of_members: list[tuple[str, str]] = []
    for sub, problem in problems:
        if members and re.match(r"^members(\[|\.|$)", sub):
            of_members.append((sub, problem.message))
            continue
        keys = tuple(k for k in re.sub(r"\[\d+\]", "", sub).split(".") if k)
        found.setdefault(owner_of(keys, owners), []).append(problem.message)
    return found, of_members
