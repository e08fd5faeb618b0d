"""Two plans side by side, for Compare: both written in Stagelab's own layout so only
settings differ (`same_layout`), aligned HTML columns with removed, added and changed lines
coloured (`plan_diff_html`), and each block of changed lines in a few words
(`plan_changes`: "cls › lr: 0.1 → 0.2"). Qt-free."""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass


def same_layout(a: str, b: str) -> tuple[str, str]:
    """Both plans as Stagelab writes a plan (`dump_yaml`), so the diff shows settings that
    differ, not layout: a plan cloned with `--set` or edited in the window is written in
    block style, its parent maybe in flow style (every line would differ). Comments go
    too. Plans that do not parse are compared as they are."""
    from engine.spec import PlanInvalid, parse_plan_text
    from engine.spec.plan import dump_yaml

    try:
        return dump_yaml(parse_plan_text(a)), dump_yaml(parse_plan_text(b))
    except PlanInvalid:
        return a, b


def _opcodes(a: list[str], b: list[str]):
    """difflib's opcodes, with a replacement of unequal length split into the lines that
    changed and the lines only one side has (added or removed), so both are coloured and
    stepped through as what they are."""
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        k = min(i2 - i1, j2 - j1)
        if op != "replace" or i2 - i1 == j2 - j1:
            yield op, i1, i2, j1, j2
            continue
        yield "replace", i1, i1 + k, j1, j1 + k
        if i2 - i1 > k:
            yield "delete", i1 + k, i2, j1 + k, j1 + k
        else:
            yield "insert", i1 + k, i1 + k, j1 + k, j2


def plan_diff_html(a: list[str], b: list[str]) -> tuple[str, str]:
    """Two aligned HTML columns: removed lines red on the left, added green on the right,
    changed lines amber on both; blank filler keeps the sides level."""
    left, right = [], []

    def line(text: str | None, colour: str | None) -> str:
        if text is None:
            return "<div>&nbsp;</div>"
        style = f' style="background:{colour}; color:black"' if colour else ""
        return f"<div{style}>{html.escape(text) or '&nbsp;'}</div>"

    for op, i1, i2, j1, j2 in _opcodes(a, b):
        if op == "equal":
            left += [line(t, None) for t in a[i1:i2]]
            right += [line(t, None) for t in b[j1:j2]]
            continue
        colour_a = {"replace": "#ffe8a8", "delete": "#ffc9c9"}.get(op)
        colour_b = {"replace": "#ffe8a8", "insert": "#c9f2c9"}.get(op)
        n = max(i2 - i1, j2 - j1)
        for k in range(n):
            left.append(line(a[i1 + k] if i1 + k < i2 else None, colour_a))
            right.append(line(b[j1 + k] if j1 + k < j2 else None, colour_b))
    wrap = '<div style="font-family:monospace; white-space:pre">{}</div>'
    return wrap.format("".join(left)), wrap.format("".join(right))


@dataclass(frozen=True)
class Change:
    """A block of differing lines in the two-column view: its first row, how many rows,
    and the first line of each side in a few words ("max_steps: 20 → max_steps: 30")."""

    row: int
    rows: int
    summary: str


def plan_changes(a: list[str], b: list[str]) -> list[Change]:
    """Every block of differing lines, top to bottom, at its rows in `plan_diff_html`'s
    columns (which keep both sides level)."""
    row, out = 0, []
    for op, i1, i2, j1, j2 in _opcodes(a, b):
        n = max(i2 - i1, j2 - j1)
        if op != "equal":
            old = a[i1].strip() if i1 < i2 else ""
            new = b[j1].strip() if j1 < j2 else ""
            lines = f"{n} line{'s' if n > 1 else ''}"
            if op == "replace" and _key(old) is not None and _key(old) == _key(new):
                # One setting changed: where it is and both values ("cls › lr: 0.1 → 0.2").
                path = " › ".join([*_parents(b, j1), _key(new)])
                old, new = old.split(":", 1)[1].strip(), new.split(":", 1)[1].strip()
                old = f"{path}: {old}"
            summary = {
                "replace": f"{old} → {new}" + (f" ({lines} changed)" if n > 1 else ""),
                "delete": f"removed {lines}: {old}",
                "insert": f"added {lines}: {new}",
            }[op]
            out.append(Change(row, n, summary))
        row += n
    return out


def _key(line: str) -> str | None:
    """The key of a YAML `key: value` line (a list item's too), else None."""
    text = line.strip().removeprefix("- ")
    key, colon, _ = text.partition(":")
    return key.strip() if colon and key.strip() and " " not in key.strip() else None


def _parents(lines: list[str], row: int) -> list[str]:
    """The keys above a line of block-style YAML, outermost first; a list item is named by
    its first line's value (a stage by its name): ["cls", "optimizer"] for the lr line."""
    out: list[str] = []
    line = lines[row]
    indent = len(line) - len(line.lstrip())
    if line.lstrip().startswith("- "):
        return out  # the item's own first line: its list names it
    for above in reversed(lines[:row]):
        text = above.lstrip()
        level = len(above) - len(text)
        if not text:
            continue
        if text.startswith("- ") and level + 2 <= indent:
            out.append(text[2:].split(":", 1)[-1].strip() or text[2:])
            indent = level
        elif level < indent:
            out.append(text.split(":", 1)[0].strip())
            indent = level
        if indent == 0:
            break
    out.reverse()
    return [part for part in out if part != "stages"]
