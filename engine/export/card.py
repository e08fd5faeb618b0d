"""The model card (README.md) written beside every export: the plan, the stage and the
stages it grew from, the data fingerprints the run recorded, its final metrics and the
parity figures of the export. Plain text, no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.export.request import Provenance


def _walk(plan: dict[str, Any], stage: str) -> list[tuple[str, dict[str, Any]]]:
    """The stage and the earlier stages it started from, newest first."""
    stages = {s.get("name"): s for s in plan.get("stages") or [] if isinstance(s, dict)}
    found: list[tuple[str, dict[str, Any]]] = []
    todo, seen = [stage], set()
    while todo:
        name = todo.pop(0)
        if name in seen or name not in stages:
            continue
        seen.add(name)
        found.append((name, stages[name]))
        todo += [s["from_stage"] for s in _sources(stages[name]) if s.get("from_stage")]
    return found


def _sources(entry: dict[str, Any]) -> list[dict[str, Any]]:
    sources = [entry.get("model"), entry.get("teacher"), entry.get("base")]
    for member in entry.get("members") or []:
        sources += [member, member.get("model") if isinstance(member, dict) else None]
    return [s for s in sources if isinstance(s, dict)]


def lineage(plan: dict[str, Any], stage: str) -> list[str]:
    """The stage and what it started from, newest first ('sentiment (train)',
    'pretrain (pretrain)', 'built-in bert-tiny'), read from the plan's stages."""
    found: list[str] = []
    for name, entry in _walk(plan, stage):
        found.append(f"{name} ({entry.get('kind', 'train')})")
        for source in _sources(entry):
            if source.get("builtin"):
                found.append(f"built-in {source['builtin']}")
            elif source.get("path") or source.get("hub"):
                found.append(f"model {source.get('path') or source.get('hub')}")
    return list(dict.fromkeys(found))


def stage_fingerprints(
    plan: dict[str, Any], stage: str, plan_dir: Path, recorded: dict[str, str]
) -> dict[str, str]:
    """The recorded data fingerprints of the files the stage and its lineage read."""
    paths = []
    for _, entry in _walk(plan, stage):
        members = [m.get("data") for m in entry.get("members") or [] if isinstance(m, dict)]
        for data in [entry.get("data"), *members]:
            if isinstance(data, dict) and isinstance(data.get("path"), str):
                paths.append((plan_dir / Path(data["path"]).expanduser()).resolve())
    return {
        file: digest
        for file, digest in recorded.items()
        if any(Path(file) == p or p in Path(file).parents for p in paths)
    }


def card_text(provenance: Provenance, fmt: str, parity: list[str], notes: list[str]) -> str:
    """The README.md of an export."""
    p = provenance
    title = p.stage or "model"
    if p.member:
        title += f" / {p.member}"
    lines = [f"# {title}", ""]
    where = f"stage `{p.stage}` ({p.kind})" if p.stage else "a stage output folder"
    if p.member:
        where += f", member `{p.member}`"
    origin = f" of run `{p.run}` of plan **{p.plan}**" if p.run else ""
    lines += [f"Exported by Stagelab as **{fmt}** from {where}{origin}.", ""]
    lines += notes + ([""] if notes else [])
    if p.lineage:
        lines += ["## Lineage", "", *[f"- {step}" for step in p.lineage], ""]
    if p.fingerprints:
        lines += ["## Data", "", "| file | fingerprint |", "| --- | --- |"]
        lines += [f"| {Path(f).name} | `{h}` |" for f, h in sorted(p.fingerprints.items())]
        lines.append("")
    metrics = {k: v for k, v in p.metrics.items() if not k.startswith("perf/")}
    if metrics:
        lines += ["## Final metrics", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_number(v)} |" for k, v in sorted(metrics.items())]
        lines.append("")
    if parity:
        lines += ["## Parity", "", *[f"- {line}" for line in parity], ""]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
