"""Make the README's screenshots of the plan editor (offscreen, no screen needed).

python packaging/screenshots.py [--out docs/screenshots]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt_look import apply_system_theme

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(tempfile.mkdtemp(prefix="stagelab-shots-"))
    window.resize(1500, 920)
    window.show()

    def shot(widget, name: str) -> None:
        app.processEvents()
        path = args.out / name
        widget.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    window.plan_view.select_row(2)
    shot(window, "editor-demo.png")
    freezing = window.inspector._groups[("freezing",)]
    window.inspector.ensureWidgetVisible(freezing, 0, 40)
    window.inspector.verticalScrollBar().setValue(freezing.y() - 260)
    shot(window.inspector, "inspector.png")
    shot(window.lr_preview, "lr-preview.png")

    # An invalid plan: a negative learning rate, a missing file, a broken reference.
    doc = window.doc
    doc.set_value(2, ("optimizer", "lr"), -0.1)
    doc.set_value(1, ("data", "path"), "../data/topic.csv")
    doc.set_value(2, ("model", "from_stage"), "topic")
    window.plan_view.select_row(2)
    window.inspector.verticalScrollBar().setValue(0)
    window.bottom_tabs.setCurrentIndex(1)
    shot(window, "invalid-plan.png")
    doc._saved_text = doc.to_yaml()  # nothing to save: the window closes without asking
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
