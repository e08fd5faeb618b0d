"""The panels a person chooses for the monitor and Compare (`PanelLayout`): each panel
holds metrics by name or glob pattern (`eval/accuracy*`; `!pattern` leaves keys out), in
the order shown; with the x axis and the smoothing. A layout is kept per experiment in
the workspace (`views/<experiment>.json`), not in the plan: changing a view must not make
the plan a new experiment. Qt-free."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

X_AXES = ("step", "wall", "tokens")
X_LABELS = {"step": "step", "wall": "wall time (min)", "tokens": "tokens seen"}
# Series that count the tokens seen so far: plotting by tokens needs one of them.
TOKEN_KEYS = ("perf/tokens_seen", "train/tokens_seen", "train/tokens")
VERSION = 1


@dataclass
class Panel:
    """One plot: its title, the patterns of the metrics it holds, its y axis' unit."""

    title: str
    patterns: list[str] = field(default_factory=list)
    unit: str = ""

    def holds(self, key: str) -> bool:
        """Whether `key` matches an including pattern and no `!` excluding one."""
        if any(fnmatchcase(key, p[1:]) for p in self.patterns if p.startswith("!")):
            return False
        return any(fnmatchcase(key, p) for p in self.patterns if not p.startswith("!"))


LOSS = Panel(
    "Loss",
    ["train/loss", "train/loss/*", "train/loss_*", "eval/loss", "eval/loss/*", "test/loss*"],
    "loss",
)
REWARDS = ["train/reward_*", "train/logp_*"]
EVALUATION = Panel(
    "Evaluation",
    ["eval/*", "test/*", "teacher/*", *REWARDS]
    + ["!eval/loss", "!eval/loss/*", "!test/loss*", "!teacher/parameters"],
)
BASE = (
    LOSS,
    Panel("Learning rate", ["train/lr"], "lr"),
    Panel("Gradient norm", ["train/grad_norm"], "norm"),
    Panel("Throughput", ["perf/samples_per_s"], "samples/s"),
    EVALUATION,
)


@dataclass
class PanelLayout:
    """The panels of a view, in order, with its x axis and smoothing weight (0..0.99)."""

    panels: list[Panel]
    x_axis: str = "step"
    smoothing: float = 0.0

    def titles(self) -> list[str]:
        return [p.title for p in self.panels]

    def panels_for(self, key: str) -> list[Panel]:
        return [p for p in self.panels if p.holds(key)]

    def add(self, title: str, patterns: list[str]) -> Panel:
        """A new panel at the end; its title made unique ("accuracy 2")."""
        taken, name, n = set(self.titles()), title.strip() or "Panel", 2
        unique = name
        while unique in taken:
            unique, n = f"{name} {n}", n + 1
        panel = Panel(unique, [p.strip() for p in patterns if p.strip()])
        self.panels.append(panel)
        return panel

    def remove(self, title: str) -> None:
        self.panels = [p for p in self.panels if p.title != title]

    def move(self, title: str, by: int) -> None:
        """Move a panel `by` places (-1: one earlier), kept within the list."""
        i = self.titles().index(title)
        j = max(0, min(len(self.panels) - 1, i + by))
        self.panels.insert(j, self.panels.pop(i))

    def to_dict(self) -> dict:
        return {
            "version": VERSION,
            "x_axis": self.x_axis,
            "smoothing": self.smoothing,
            "panels": [
                {"title": p.title, "metrics": p.patterns, "unit": p.unit} for p in self.panels
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> PanelLayout:
        panels = [
            Panel(str(p["title"]), [str(m) for m in p.get("metrics", [])], str(p.get("unit", "")))
            for p in data.get("panels", [])
        ]
        x_axis = data.get("x_axis", "step")
        smoothing = min(0.99, max(0.0, float(data.get("smoothing", 0.0))))
        return cls(panels, x_axis if x_axis in X_AXES else "step", smoothing)


def default_layout(kinds: Iterable[str] = ()) -> PanelLayout:
    """What the monitor shows before anyone chooses: loss large, learning rate, gradient
    norm, throughput and evaluation; a plan with a preference stage gets its rewards and
    log-probabilities in a panel of their own instead of among the evaluation metrics."""
    panels = [Panel(p.title, list(p.patterns), p.unit) for p in BASE]
    if "preference" in set(kinds):
        evaluation = panels[-1]
        evaluation.patterns = [p for p in evaluation.patterns if p not in REWARDS]
        panels.append(Panel("Rewards", list(REWARDS)))
    return PanelLayout(panels)


def layout_path(workspace: Path, experiment: str) -> Path:
    """Where an experiment's view is kept: `<workspace>/views/<experiment>.json` (a name
    with characters a file name cannot hold gets them replaced and a short hash added)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    if safe != experiment:  # "a/b" and "a_b" must not share a file
        safe += "-" + hashlib.sha1(experiment.encode("utf-8")).hexdigest()[:8]
    return Path(workspace) / "views" / f"{safe}.json"


def saved_layout(workspace: Path | None, experiment: str) -> PanelLayout | None:
    """The saved view of an experiment, or None (a file that cannot be read is ignored:
    the view is a convenience, never a reason to fail)."""
    if workspace is None:
        return None
    try:
        data = json.loads(layout_path(workspace, experiment).read_text(encoding="utf-8"))
        layout = PanelLayout.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return layout if layout.panels else None


def load_layout(workspace: Path | None, experiment: str, kinds: Iterable[str] = ()) -> PanelLayout:
    """The saved view of an experiment, else the default for its stage kinds."""
    return saved_layout(workspace, experiment) or default_layout(kinds)


def save_layout(workspace: Path, experiment: str, layout: PanelLayout) -> Path:
    path = layout_path(workspace, experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(layout.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
