"""Screenshots of the grow and distill stages for the README (offscreen, no screen needed):
the editor with the progressive template (a grow stage selected, its growth settings in the
inspector), the editor with the distill template (teacher and student settings), and the
monitor of a distill run trained for real in the window (task and KD losses, the teacher's
score beside the student's, the stage rows' model sizes).

    python packaging/screenshots_grow_distill.py [--out docs/screenshots] [--steps 60]

`--steps` caps each stage of the distill run (the full template takes about three minutes
on an idle CPU; the cap keeps the shot quick on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SIZE = (1400, 880)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--steps", type=int, default=60, help="steps per stage of the run")
    parser.add_argument("--editor-only", action="store_true", help="skip the distill run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.model.plan_document import PlanDocument
    from app.qt.qt_look import apply_system_theme
    from engine.resources import resources_dir

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(tempfile.mkdtemp(prefix="stagelab-shots-"))
    window.resize(*SIZE)
    window.show()

    def shot(widget, name: str) -> None:
        for _ in range(3):
            app.processEvents()
        path = args.out / name
        widget.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    plans = resources_dir() / "plans"
    window.set_document(PlanDocument.from_file(plans / "progressive.yaml", as_template=True))
    window.plan_view.select_row(2)
    shot(window, "editor-progressive.png")

    window.set_document(PlanDocument.from_file(plans / "distill.yaml", as_template=True))
    window.plan_view.select_row(2)
    shot(window, "editor-distill.png")
    window.doc._saved_text = window.doc.to_yaml()
    if not args.editor_only:
        distill_run_shot(app, window, shot, args.steps)
    window.close()
    return 0


def distill_run_shot(app, window, shot, steps: int) -> None:
    """The distill template, each stage capped at `steps`, trained in the window."""
    from screenshots import wait_until  # packaging/screenshots.py: the event loop runs

    doc = window.doc
    for index in range(len(doc.stages)):
        doc.set_value(index, ("max_steps",), steps)
        doc.set_value(index, ("eval", "every_steps"), max(steps // 6, 1))
    window.run_plan()
    monitor = window.runs.monitor
    wait_until(app, lambda: monitor.run.status == "finished", 1800, "the distill run")
    monitor._redraw()
    monitor.plots.smoothing.setValue(50)
    monitor.side.setCurrentIndex(0)
    shot(window, "monitor-distill.png")
    window.doc._saved_text = window.doc.to_yaml()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
