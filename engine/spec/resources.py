"""Where the shipped resources (plans, demo data) are, without importing anything heavy."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2] / "resources"


def resources_dir() -> Path:
    """The folder holding plans/, data/ and icons/."""
    return _ROOT


def plan_templates() -> list[Path]:
    """The shipped plans, demo first."""
    plans = sorted((_ROOT / "plans").glob("*.yaml"))
    return sorted(plans, key=lambda p: (p.stem != "demo", p.stem))


def demo_plan_path() -> Path:
    """The built-in demo plan."""
    return _ROOT / "plans" / "demo.yaml"
