"""Screenshots of the Playground and of the editor's memory estimate for the README
(offscreen, no screen needed): a sentiment classifier's label probabilities beside a
causal LM's generated text, both tiny models trained here for real (tests/tiny_outputs.py,
about a minute on CPU), and the demo plan with the sentiment stage's size, trainable parameters (layers
frozen) and memory estimate in the inspector, and an ensemble beside a joint stage's member
with the picker open on the outputs listed under their stages. Each at 1400×880 and
1024×640.

    python packaging/screenshots_playground.py [--out docs/screenshots] [--steps 150]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
LARGE, SMALL = (1400, 880), (1024, 640)
PROMPT = "the staff were friendly and the room was"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--steps", type=int, default=150, help="training steps per output")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme
    from tests.tiny_outputs import train_tiny_outputs

    tiny = train_tiny_outputs(Path(tempfile.mkdtemp(prefix="stagelab-playground-")), args.steps)
    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(tiny.workspace)
    window.resize(*LARGE)
    window.show()

    def wait(condition, what: str, seconds: float = 120) -> None:
        end = time.time() + seconds
        while not condition():
            if time.time() > end:
                raise SystemExit(f"gave up waiting for {what}")
            app.processEvents()
            time.sleep(0.02)

    def save(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        path = args.out / name
        window.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    def both_sizes(name: str) -> None:
        save(name)
        window.resize(*SMALL)
        save(name.replace(".png", "-1024.png"))
        window.resize(*LARGE)
        app.processEvents()

    window.plan_view.select_row(2)  # frozen layers: fewer trainable parameters
    window.fit_docks(fresh=True)
    both_sizes("editor-memory.png")

    window.runs.show_tab(window.tabs.indexOf(window.playground))
    playground = window.playground
    left, right = playground.panes
    for pane, stage in ((left, "sentiment"), (right, "writer")):
        pane.pick(next(c for c in pane.choices if c.stage == stage))
    wait(lambda: left.state.ready and right.state.ready, "the workers")
    right.spins["max_new_tokens"].setValue(30)
    right.spins["temperature"].setValue(0.7)
    playground.input.setPlainText(PROMPT)
    playground.run()
    wait(lambda: bool(left.state.bars) and right.state.status.startswith("Answered"), "answers")
    both_sizes("playground.png")

    # An ensemble and a joint stage's members, listed under their stages (the picker's list
    # drawn open over the window), each answering the same text.
    from tests.tiny_ensemble import run_tiny_ensemble

    run_tiny_ensemble(tiny.workspace, tiny.folders["sentiment"], steps=max(2, args.steps // 5))
    playground.reload_outputs()
    left.pick(next(c for c in left.choices if c.stage == "together"))
    right.pick(next(c for c in right.choices if c.member == "calm"))
    playground.input.setPlainText("the staff were lovely and the room was clean")
    playground.run()  # both still loading: each answers once loaded
    wait(
        lambda: (
            left.state.status.startswith("Answered") and right.state.status.startswith("Answered")
        ),
        "the ensemble's answers",
    )

    def with_open_picker(name: str) -> None:
        for _ in range(5):
            app.processEvents()
        left.picker.showPopup()
        for _ in range(5):
            app.processEvents()
        shot = window.grab()
        popup = left.picker.view().window()
        painter = QPainter(shot)
        painter.drawPixmap(window.mapFromGlobal(popup.mapToGlobal(QPoint(0, 0))), popup.grab())
        painter.end()
        left.picker.hidePopup()
        path = args.out / name
        shot.save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    with_open_picker("playground-ensemble.png")
    window.resize(*SMALL)
    with_open_picker("playground-ensemble-1024.png")
    window.resize(*LARGE)
    window.doc._saved_text = window.doc.to_yaml()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
