"""Screenshots of the samples table (issue 31, item 3), into docs/screenshots: the demo cut
to 60/30/60 steps with eval.samples on each stage, trained for real in the window, in the
monitor's Samples tab; then a clone with a higher fine-tuning learning rate (its first two
stages reused) beside it in Compare's Samples tab; each at 1400x880 and 1024x640
(~6 min on a busy 2-core CPU; --workspace takes the shots again from a workspace it
trained)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "packaging"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from screenshots import LARGE, SMALL, wait_until  # noqa: E402

# The same texts for the topic and the sentiment stage: one row follows them both.
TEXTS = [
    "i found the race really perfect this week and i loved it",
    "honestly the market is quite rude and so is the profit",
    "this local tournament felt so fantastic",
    "the microscope is quite broken",
    "the island was calm",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--workspace", help="a workspace this script trained before: only take the shots"
    )
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme
    from engine.store import queries

    app = QApplication([])
    apply_system_theme(app)
    workspace = args.workspace or tempfile.mkdtemp(prefix="stagelab-samples-shots-")
    window = create_main_window(workspace)
    window.resize(*LARGE)
    window.show()

    def save(name: str) -> None:
        for _ in range(3):
            app.processEvents()
        window.grab().save(str(out / name))
        print(out / name)

    if args.workspace:
        runs = {e.name: e.runs[0].id for e in queries.list_experiments(window.store())}
        first, second = runs["demo"], runs["demo lr 3e-3"]
    else:
        first, second = train(app, window, workspace)
    shots(app, window, save, first, second)
    window.close()
    return 0


def train(app, window, workspace: str) -> tuple[str, str]:
    """The demo with samples, in the window; then its clone, on the command line."""
    from app.model.plan_document import PlanDocument
    from engine.resources import demo_plan_path
    from engine.store import queries

    window.set_document(PlanDocument.from_file(demo_plan_path(), as_template=True))
    doc = window.doc
    for index, (steps, every) in enumerate(((60, 20), (30, 10), (60, 15))):
        doc.set_value(index, ("max_steps",), steps)
        doc.set_value(index, ("eval", "every_steps"), every)
    doc.set_value(0, ("eval", "samples"), 3)
    doc.set_value(1, ("eval", "samples"), TEXTS)
    doc.set_value(2, ("eval", "samples"), TEXTS)
    doc._saved_text = doc.to_yaml()  # nothing to save when the window closes
    window.run_plan()
    first = window.last_run_id
    monitor = window.runs.monitor
    wait_until(app, lambda: monitor.run.status == "finished", 1200, "the demo")

    # The clone trains in the background while nothing is shown.
    experiment = queries.get_run(window.store(), first).experiment_id
    cli = [sys.executable, "-m", "engine.cli", "--workspace", workspace]
    clone = subprocess.run(
        [*cli, "clone", experiment, "--name", "demo lr 3e-3"]
        + ["--set", "stages.sentiment.optimizer.lr=3e-3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    subprocess.run([*cli, "run", clone], capture_output=True, check=True)
    second = queries.get_experiment(window.store(), clone).runs[0].id
    return first, second


def shots(app, window, save, first: str, second: str) -> None:
    """The first run's Samples tab (the side panel widened), then both runs in Compare."""
    monitor = window.runs.monitor
    window.runs.open_run(first)
    wait_until(app, lambda: not monitor.loading, 60, "the demo's record")
    monitor._redraw()
    monitor.side.setCurrentWidget(monitor.side.samples)
    split = monitor.side.parentWidget()  # the curves and the side tabs
    split.setSizes([560, 840])
    save("monitor-samples.png")
    window.resize(*SMALL)
    split.setSizes([330, 690])
    monitor._redraw()
    save("monitor-samples-1024.png")
    window.resize(*LARGE)
    window.runs.compare([first, second])
    view = window.runs.compare_view
    wait_until(app, lambda: len(view.runs) == 2, 60, "the compare view")
    view.tabs.setCurrentWidget(view.samples)
    save("compare-samples.png")
    window.resize(*SMALL)
    save("compare-samples-1024.png")


if __name__ == "__main__":
    raise SystemExit(main())
