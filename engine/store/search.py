"""The runs search language, shared by `stagelab ls --where` and the window's runs table:

    tag:baseline status:finished eval/accuracy>0.9 lr<1e-3 sentiment -tag:old

Terms are ANDed; `-` before a term negates it. `tag:`, `status:`, `target:` (`local` is
this machine) and `experiment:` (name or id prefix) are fields; `KEY OP VALUE` with OP one
of < <= > >= = != compares a metric (a key with `/`: its final value, in the last stage
that records it) or a plan setting (a dotted path, matched at its end: `lr`,
`optimizer.lr`, `stages.0.optimizer.lr`, `stages.sentiment.optimizer.lr`); any other word
is looked for in the experiment's name and notes, the run's note and tags, and the run
and experiment ids.
Everything but plan settings and the live statuses compiles to one SQL query; settings
are read from each distinct plan text once (cached), after SQL has narrowed the runs.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import and_, exists, not_, or_, select

from engine.store.db import Store
from engine.store.models import SqlExperiment, SqlLatestMetric, SqlRun, SqlRunTag
from engine.store.status import LIVE, RunStatus, effective_status

FIELDS = ("tag", "status", "target", "experiment")
_COMPARE = re.compile(r"([A-Za-z_][\w.\-/]*)(<=|>=|!=|==|=|<|>)(.*)")
_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class SearchError(ValueError):
    """A search that cannot be read; the message is one sentence naming the bad term."""


@dataclass(frozen=True)
class Term:
    """One term: kind is field, metric, setting or word."""

    kind: str
    name: str  # the field, metric key or setting path; the word itself for words
    op: str = ""
    value: str = ""
    negated: bool = False


def parse(text: str) -> list[Term]:
    """The terms of a search, checked.

    Raises:
        SearchError: an unclosed quote, an unknown field, an unknown status, a comparison
            without a value, or a metric compared with something not a number.
    """
    try:
        tokens = shlex.split(text)
    except ValueError:
        raise SearchError("the search has an unclosed quote: close it or remove it") from None
    return [_term(token) for token in tokens]


def _term(token: str) -> Term:
    negated = token.startswith("-") and len(token) > 1
    body = token[1:] if negated else token
    match = _COMPARE.fullmatch(body)
    if match:
        name, op, value = match.groups()
        op = "=" if op == "==" else op
        if not value:
            raise SearchError(f"'{token}' compares with nothing: write a value, e.g. lr<1e-3")
        if "/" in name:
            if _number(value) is None:
                raise SearchError(f"'{token}' compares a metric with '{value}', not a number")
            return Term("metric", name, op, value, negated)
        return Term("setting", name, op, value, negated)
    if any(c in body for c in "<>=") and ":" not in body:
        raise SearchError(f"'{token}' is not a comparison: write KEY<VALUE, e.g. lr<1e-3")
    field, colon, value = body.partition(":")
    if colon and field.isidentifier():
        if field not in FIELDS:
            raise SearchError(
                f"'{token}' names no field: use tag:, status:, target: or experiment:"
            )
        if not value:
            raise SearchError(f"'{token}' has no value: write e.g. {field}:{_example(field)}")
        if field == "status" and value.lower() not in tuple(RunStatus):
            raise SearchError(f"'{token}' names no status: use one of {', '.join(RunStatus)}")
        return Term("field", field, ":", value.lower() if field == "status" else value, negated)
    return Term("word", body, negated=negated)


def _example(field: str) -> str:
    return {"tag": "baseline", "status": "finished", "target": "local"}.get(field, "demo")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


# -- SQL ------------------------------------------------------------------------------------


def _like(word: str) -> str:
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _sql(term: Term):
    """The term as a SQL condition on runs joined with experiments; None where SQL cannot
    decide it alone."""
    if term.kind == "word":
        pattern = _like(term.name)
        return or_(
            *(
                column.ilike(pattern, escape="\\")
                for column in (SqlExperiment.name, SqlRun.note, SqlExperiment.notes, SqlRun.id)
            ),
            SqlExperiment.id.ilike(pattern, escape="\\"),
            exists().where(
                SqlRunTag.run_id == SqlRun.id, SqlRunTag.tag.ilike(pattern, escape="\\")
            ),
        )
    if term.kind == "metric":
        final = (
            select(SqlLatestMetric.value)
            .where(SqlLatestMetric.run_id == SqlRun.id, SqlLatestMetric.key == term.name)
            .order_by(SqlLatestMetric.stage_idx.desc())
            .limit(1)
            .scalar_subquery()
        )
        return _OPS[term.op](final, float(term.value))
    if term.kind == "setting":
        # Narrowing only: a plan that never writes the leaf's name cannot have the setting.
        leaf = [p for p in term.name.split(".") if not p.isdigit()][-1]
        return None if term.negated else SqlRun.plan_text.ilike(_like(leaf), escape="\\")
    if term.name == "tag":
        return exists().where(SqlRunTag.run_id == SqlRun.id, SqlRunTag.tag == term.value)
    if term.name == "target":
        local = term.value.lower() in ("local", "here")
        return SqlRun.target.is_(None) if local else SqlRun.target == term.value
    if term.name == "experiment":
        return or_(
            SqlExperiment.name.ilike(_like(term.value), escape="\\"),
            SqlExperiment.id.startswith(term.value),
        )
    # status: a live-looking stored status may be interrupted in effect (checked after).
    if term.value == RunStatus.INTERRUPTED:
        return None if term.negated else SqlRun.status.in_([term.value, *LIVE])
    return None if term.negated and term.value in LIVE else SqlRun.status == term.value


def _exact_in_sql(term: Term) -> bool:
    if term.kind == "setting":
        return False
    if term.kind == "field" and term.name == "status":
        return term.value not in LIVE and term.value != RunStatus.INTERRUPTED
    return True


def search_runs(store: Store, text: str) -> list[str]:
    """Ids of the runs the search matches, newest first.

    Raises:
        SearchError: the search cannot be read (the message names the bad term).
    """
    terms = parse(text)
    conditions = []
    for term in terms:
        condition = _sql(term)
        if condition is not None:
            conditions.append(
                not_(condition) if term.negated and _exact_in_sql(term) else condition
            )
    later = [t for t in terms if not _exact_in_sql(t)]
    columns = [
        SqlRun.id,
        SqlRun.status,
        SqlRun.pid,
        SqlRun.host,
        SqlRun.heartbeat_ms,
        SqlRun.target,
    ]
    if any(t.kind == "setting" for t in later):
        columns.append(SqlRun.plan_text)
    query = (
        select(*columns)
        .join(SqlExperiment, SqlExperiment.id == SqlRun.experiment_id)
        .where(and_(True, *conditions))
        .order_by(SqlRun.created_ms.desc(), SqlRun.id)
    )
    with store.session() as s:
        rows = s.execute(query).all()
    if not later:
        return [r.id for r in rows]
    seen: dict[tuple[int, str], bool] = {}  # runs of one experiment share their plan text
    return [r.id for r in rows if all(_python(t, r, seen) != t.negated for t in later)]


def _python(term: Term, row, seen: dict[tuple[int, str], bool]) -> bool:
    if term.kind == "setting":
        key = (id(term), row.plan_text)
        found = seen.get(key)
        if found is None:
            found = seen[key] = setting_matches(plan_settings(row.plan_text), term)
        return found
    status = effective_status(
        row.status, row.pid, row.host, row.heartbeat_ms, mirrored=row.target is not None
    )
    return status == term.value


# -- plan settings --------------------------------------------------------------------------


@functools.lru_cache(maxsize=50_000)
def plan_settings(plan_text: str) -> tuple[tuple[tuple[str, ...], Any], ...]:
    """Every leaf setting of a plan as (path, value); a list item with a `name` is reachable
    by its index and by its name (`stages.0.lr` and `stages.sentiment.lr`). A plan that is
    not YAML has none."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        plan = yaml.load(plan_text, Loader=loader)
    except (yaml.YAMLError, RecursionError):
        return ()
    out: list[tuple[tuple[str, ...], Any]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, str(key)))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, (*path, str(i)))
                if isinstance(child, dict) and isinstance(child.get("name"), str):
                    walk(child, (*path, child["name"]))
        else:
            out.append((path, node))

    try:
        walk(plan, ())
    except RecursionError:  # a plan nested thousands deep has no setting worth a search
        return ()
    return tuple(out)


def setting_value(settings, name: str) -> list[Any]:
    """The values of the settings whose path ends with `name`'s dotted parts."""
    parts = tuple(name.split("."))
    return [v for path, v in settings if path[-len(parts) :] == parts]


def setting_matches(settings, term: Term) -> bool:
    """Whether any setting the term names compares true (numbers as numbers, anything else
    as text with = and != only)."""
    wanted = _number(term.value)
    for value in setting_value(settings, term.name):
        have = _number(value)
        if wanted is not None and have is not None and not math.isnan(have):
            if _OPS[term.op](have, wanted):
                return True
        elif term.op in ("=", "!="):
            text = str(value).lower() if not isinstance(value, bool) else str(value).lower()
            if _OPS[term.op](text, term.value.lower()):
                return True
    return False
