"""Every menu action and toolbar entry of the window, walked in a process of its own
(tests/app/walk_window.py): each dialog that opens is painted to a PNG and each of its
buttons clicked. Run → Sweep… segfaulted on OK, Cancel and on a screenshot (a widget
attribute named `metric` hid QWidget.metric(), which Qt calls while painting); a crash
like it fails one of these tests, not the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.resources import plan_templates

WALKER = Path(__file__).with_name("walk_window.py")
ROOT = Path(__file__).resolve().parents[2]
# A new menu must be walked too: add it here and to the parametrisation.
MENUS = ["File", "Edit", "Run", "View", "Help"]


def walk(menu: str, tmp_path: Path) -> dict:
    sweep_plan = next(p for p in plan_templates() if p.stem == "sweep")
    env = dict(os.environ, HOME=str(tmp_path), WALK_TIMEOUT="150", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(WALKER), menu, str(sweep_plan), str(tmp_path / "ws"), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    # -11 is a segfault: the crash this test exists for.
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-4000:]}"
    return json.loads((tmp_path / "report.json").read_text())


def check_dialogs(report: dict, tmp_path: Path) -> None:
    """Every dialog was painted, and each button of each first dialog was clicked once."""
    for dialog in report["dialogs"]:
        png = tmp_path / dialog["png"]
        assert png.stat().st_size > 2000, f"{dialog['title']}: no picture of it"
    by_action: dict[str, list[dict]] = {}
    for dialog in report["dialogs"]:
        if not dialog["nested"]:
            by_action.setdefault(dialog["action"], []).append(dialog)
    for action, dialogs in by_action.items():
        clicked = [d["clicked"] for d in dialogs if d["clicked"]]
        assert sorted(clicked) == sorted(dialogs[0]["buttons"]), action


@pytest.mark.slow
@pytest.mark.parametrize("menu", MENUS + ["toolbar"])
def test_every_action_and_dialog_of_the_window_is_walked_without_a_crash(menu, tmp_path):
    report = walk(menu, tmp_path)
    assert report["menus"] == MENUS, "a new menu: walk it (MENUS)"
    check_dialogs(report, tmp_path)
    walked = {a["action"] for a in report["actions"] if a["enabled"]}
    titles = {d["title"] for d in report["dialogs"]}
    if menu == "Run":
        # The sweep template: Run sweep and Run plan start training and are not walked.
        assert "Sweep…" in walked and "Sweep" in titles
        form = next(d for d in report["dialogs"] if d["class"] == "QtSweepForm")
        assert {"OK", "Cancel", "Remove sweep"} <= set(form["buttons"])
        assert report["skipped"] and all(s.startswith("Run") for s in report["skipped"])
        # Run → Targets… (issue 30): the dialog and its Add form, every button clicked.
        assert "Targets…" in walked and {"Targets", "Add target"} <= titles
    if menu == "File":
        assert {"New plan", "Open…", "Save", "Save as…", "Quit", "demo"} <= walked
        assert {"Unsaved changes", "Save plan", "Open plan"} <= titles
    if menu == "Help":
        assert {"Keyboard shortcuts", "About Stagelab"} <= titles
    if menu == "toolbar":
        tabs = sorted(tmp_path.glob("tab-*.png"))
        assert len(tabs) >= 5 and all(p.stat().st_size > 5000 for p in tabs)
