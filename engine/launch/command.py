"""How to start a Stagelab module in a process of its own; standard library only, so that
`stagelab` hands over to the window without loading anything else (cold start)."""

from __future__ import annotations

import sys


def module_command(module: str) -> list[str]:
    """How to start `python -m <module>` (engine or app) from this program: in a frozen
    bundle the executable itself is re-invoked with `--<module>` (packaging/bundle_entry.py),
    since there is no interpreter to hand `-m` to."""
    if getattr(sys, "frozen", False):
        return [sys.executable, f"--{module}"]
    return [sys.executable, "-m", module]
