"""Where the shipped resources (plans, demo data, icons, desktop files) are, without
importing anything heavy.

An installed Stagelab (wheel, editable install or frozen bundle) has them as the package
`stagelab_resources`, located through `importlib.resources`; only a bare source checkout
that was never installed falls back to its own `resources/` folder.
"""

from __future__ import annotations

import importlib.resources
import sys
from functools import cache
from pathlib import Path


@cache
def resources_dir() -> Path:
    """The folder holding plans/, data/, icons/ and desktop/."""
    if getattr(sys, "frozen", False):  # the PyInstaller bundle keeps them as data files
        return Path(sys._MEIPASS) / "stagelab_resources"  # type: ignore[attr-defined]
    try:
        # Installed packages are plain folders (wheels install unzipped), so the
        # traversable is a real path that data loaders and Qt can open.
        root = Path(str(importlib.resources.files("stagelab_resources")))
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2] / "resources"
    return root


def plan_templates() -> list[Path]:
    """The shipped plans, demo first."""
    plans = sorted((resources_dir() / "plans").glob("*.yaml"))
    return sorted(plans, key=lambda p: (p.stem != "demo", p.stem))


def demo_plan_path() -> Path:
    """The built-in demo plan."""
    return resources_dir() / "plans" / "demo.yaml"


def icon_path(size: int | None = None) -> Path:
    """The application icon: the SVG, or the PNG of a given size (16 … 512 px)."""
    icons = resources_dir() / "icons"
    return icons / ("stagelab.svg" if size is None else f"stagelab-{size}.png")
