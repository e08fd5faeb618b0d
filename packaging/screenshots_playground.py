"""Screenshots of the Playground and of the editor's memory estimate for the README
(offscreen, no screen needed): a sentiment classifier's label probabilities beside a
causal LM's generated text, both tiny models trained here for real (tests/tiny_outputs.py,
about a minute on CPU), and the demo plan with the sentiment stage's size, trainable parameters (layers
frozen) and memory estimate in the inspector. Each at 1400×880 and 1024×640.

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
    window.doc._saved_text = window.doc.to_yaml()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
