"""A target's check as the window runs it: `check_target` (engine/remote/setup.py), the
cluster's partitions for a Slurm target, and the outcome remembered in the target's stored
options (`last_check`: when, ok, the lines said, the GPUs, the error), so the target
picker lists the target's GPUs without connecting again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.remote.setup import SetupError, check_target
from engine.remote.shell import ShellError, shell_for
from engine.remote.targets import Target, TargetError

if TYPE_CHECKING:
    from engine.store.db import Store

CHECK_ERRORS = (ShellError, SetupError, TargetError)


def run_check(
    store: Store, target: Target, cache_dir: Path, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Check a target (lines said as they come) and remember the outcome; returns it.
    A failure is remembered too, then raised (ShellError, SetupError: one sentence)."""
    lines: list[str] = []

    def tell(line: str) -> None:
        lines.append(line)
        say(line)

    shell = shell_for(target)
    found: list[dict[str, Any]] = []
    try:
        side = check_target(shell, target, cache_dir, say=tell)
        if target.kind.startswith("slurm"):
            found = slurm_lines(shell, tell)
    except CHECK_ERRORS as exc:
        remember(store, target.name, {"ok": False, "lines": lines, "error": str(exc)})
        raise
    finally:
        shell.close()
    outcome = {"ok": True, "lines": lines, "gpus": side.gpus, "python": side.python}
    if target.kind.startswith("slurm"):
        outcome["partitions"] = found  # the GPU picker names the run's partition from them
    return remember(store, target.name, outcome)


def slurm_lines(shell, tell: Callable[[str], None]) -> list[dict[str, Any]]:
    """The cluster's partitions and limits, one line each (`sinfo`); returns them."""
    from dataclasses import asdict

    from engine.remote.slurm import SlurmError, partitions

    try:
        found = partitions(shell)
    except SlurmError as exc:
        tell(f"Slurm: {exc}")
        return []
    if not found:
        tell("Slurm: no partitions listed by sinfo")
    for partition in found:
        tell(f"Slurm partition {partition.describe()}")
    return [asdict(p) for p in found]


def remember(store: Store, name: str, outcome: dict[str, Any]) -> dict[str, Any]:
    """Keep a check's outcome in the target's stored options (`last_check`)."""
    from engine.store import queries

    outcome = {"ms": int(time.time() * 1000), **outcome}
    try:
        info = queries.get_target(store, name)
    except queries.NotFound:
        return outcome  # removed while it was checked
    options = dict(info.options, last_check=outcome)
    queries.add_target(store, name, info.url, options, replace=True)
    return outcome


def last_check(options: dict[str, Any]) -> dict[str, Any] | None:
    """A stored target's last check (None before the first)."""
    found = options.get("last_check")
    return found if isinstance(found, dict) else None


def check_words(options: dict[str, Any], now_ms: int | None = None) -> str:
    """The last check in a few words: 'ok 5 min ago', 'failed 2 h ago', 'never'."""
    found = last_check(options)
    if found is None:
        return "never checked"
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    seconds = max(0, (now_ms - int(found.get("ms", now_ms))) // 1000)
    if seconds < 60:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{seconds // 60} min ago"
    elif seconds < 86400:
        ago = f"{seconds // 3600} h ago"
    else:
        ago = f"{seconds // 86400} d ago"
    return f"{'ok' if found.get('ok') else 'failed'} {ago}"
