"""Screenshot of the monitor of a joint run trained for real (offscreen): the joint
template's member losses beside the total, each member's evaluation curves and test
markers, and the stage rows.

    python packaging/screenshots_joint.py WORKSPACE RUN_ID [--out docs/screenshots]

WORKSPACE holds a finished run of resources/plans/joint.yaml, e.g. made with
`stagelab --workspace /tmp/jt run resources/plans/joint.yaml`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("run_id")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme

    app = QApplication([])
    apply_system_theme(app)
    for size, name in (((1400, 880), "monitor-joint.png"), ((1024, 640), "monitor-joint-1024.png")):
        window = create_main_window(str(args.workspace))
        window.resize(*size)
        window.show()
        window.runs.open_run(args.run_id)
        monitor = window.runs.monitor
        for _ in range(20):
            app.processEvents()
        monitor._redraw()
        for _ in range(5):
            app.processEvents()
        path = args.out / name
        window.grab().save(str(path))
        print(path.relative_to(ROOT))
        window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
