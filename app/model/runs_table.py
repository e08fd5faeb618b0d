"""The runs table's columns, cells and order, without Qt (issue 31, item 4).

A column is a `Column(kind, key)`: a fixed one (run, status, target, created, duration,
tags, note), a metric's final or best value (`final`/`best` with the metric key; the cell
names the stage it is of), or a plan setting (`setting` with a dotted path matched at its
end, as the search matches it). Rows are `engine.store.run_rows.TableRun`s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.model.browser_rows import created_text, run_seconds
from app.model.formatting import duration


@dataclass(frozen=True)
class Column:
    kind: str  # run status target created duration tags note final best setting
    key: str = ""

    @property
    def header(self) -> str:
        if self.kind in ("final", "best"):  # two lines: the column is as narrow as its key
            return f"{self.key}\n{self.kind}"
        if self.kind == "setting":
            return self.key
        return FIXED[self.kind]

    @property
    def ident(self) -> str:
        """How the column is saved in the window's settings: `final:eval/accuracy`."""
        return f"{self.kind}:{self.key}" if self.key else self.kind

    @classmethod
    def parse(cls, ident: str) -> Column | None:
        kind, _, key = ident.partition(":")
        if kind in FIXED and not key:
            return cls(kind)
        if kind in ("final", "best", "setting") and key:
            return cls(kind, key)
        return None


FIXED = {
    "run": "Run",
    "status": "Status",
    "target": "Target",
    "created": "Created",
    "duration": "Duration",
    "tags": "Tags",
    "note": "Note",
}
DEFAULT_COLUMNS = (
    Column("run"),
    Column("status"),
    Column("target"),
    Column("duration"),
    Column("final", "eval/accuracy"),
    Column("best", "eval/accuracy"),
    Column("final", "eval/loss"),
    Column("tags"),
    Column("note"),
)


def _metric(found: tuple[float | None, int] | None, stage: str) -> tuple[str, object]:
    if found is None:
        return "", None
    value = found[0]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"NaN ({stage})", None
    return f"{value:.4g} ({stage})", value


def setting_text(run, path: str) -> tuple[str, object]:
    """A plan setting's value(s) in a run's plan: several stages may each have one."""
    from engine.store.search import plan_settings, setting_value

    values = setting_value(plan_settings(run.plan_text), path)
    unique = list(dict.fromkeys(str(v) for v in values))
    sort: object = None
    if values:
        first = values[0]
        try:
            sort = float(first) if not isinstance(first, bool) else str(first)
        except (TypeError, ValueError):
            sort = str(first)
    return ", ".join(unique), sort


def cell(run, column: Column, names=None) -> tuple[str, object]:
    """(text, sort key) of one cell; a sort key None sorts last either way. `names` maps
    (run id, stage index) to the stage's name, for metric cells (else the index shows)."""
    kind = column.kind
    if kind == "run":
        return f"{run.experiment} #{run.number}", (run.experiment.lower(), run.number)
    if kind == "status":
        return run.status, run.status
    if kind == "target":
        return run.target or "local", run.target or ""
    if kind == "created":
        return created_text(run.created_ms), run.created_ms
    if kind == "duration":
        secs = run_seconds(run)
        return duration(secs), secs
    if kind == "tags":
        return ", ".join(run.tags), ", ".join(run.tags) or None
    if kind == "note":
        first = run.note.splitlines()[0] if run.note else ""
        return first, run.note.lower() or None
    if kind in ("final", "best"):
        found = (run.final if kind == "final" else run.best).get(column.key)
        if found is None:
            return "", None
        stage = names.get((run.id, found[1])) if names is not None else None
        return _metric(found, stage or str(found[1]))
    return setting_text(run, column.key)


def sort_rows(rows: list, column: Column, descending: bool) -> list:
    """Rows ordered by a column; cells without a value last, whichever the direction."""
    keyed = [(cell(r, column)[1], r) for r in rows]
    present = [(k, r) for k, r in keyed if k is not None]
    missing = [r for k, r in keyed if k is None]
    try:
        present.sort(key=lambda kr: kr[0], reverse=descending)
    except TypeError:  # numbers and text in one setting column: compare as text
        present.sort(key=lambda kr: str(kr[0]), reverse=descending)
    return [r for _, r in present] + missing


def wanted_reads(columns) -> tuple[list[str], list[str], bool]:
    """What `table_runs` must read for these columns: final metrics, best metrics, plans."""
    finals = [c.key for c in columns if c.kind == "final"]
    bests = [c.key for c in columns if c.kind == "best"]
    return finals, bests, any(c.kind == "setting" for c in columns)


def chooser_settings(plan_text: str, limit: int = 40) -> list[str]:
    """Plan settings the column chooser offers: the leaf names of a plan's settings
    (`lr`, `batch_size`, …), numbers and words only, in plan order."""
    from engine.store.search import plan_settings

    out: list[str] = []
    for path, value in plan_settings(plan_text):
        if path and not path[-1].isdigit() and path[-1] not in out and path[-1] != "name":
            if isinstance(value, int | float | str) and len(str(value)) < 40:
                out.append(path[-1])
    return out[:limit]
