"""Where the shipped resources (plans, demo data, icons, desktop files) are, without
importing anything heavy.

An installed Stagelab (wheel, editable install or frozen bundle) has them as the package
`stagelab_resources`, located through its import spec (importlib.resources costs the
window's start ~15 ms); only a bare source checkout that was never installed falls back
to its own `resources/` folder.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path


@cache
def resources_dir() -> Path:
    """The folder holding plans/, data/, icons/ and desktop/."""
    if getattr(sys, "frozen", False):  # the PyInstaller bundle keeps them as data files
        return Path(sys._MEIPASS) / "stagelab_resources"  # type: ignore[attr-defined]
    # Installed packages are plain folders (wheels install unzipped): the package's folder
    # is a real path that data loaders and Qt can open.
    spec = importlib.util.find_spec("stagelab_resources")
    if spec is None or not spec.submodule_search_locations:
        return Path(__file__).resolve().parents[1] / "resources"  # <checkout>/engine/..
    return Path(spec.submodule_search_locations[0])


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
