"""Make the README's screenshot of the Sweep view on a finished sweep (offscreen, no screen
needed), the way packaging/screenshots.py shoots the rest of the window.

Without --workspace it runs the sweep template (resources/plans/sweep.yaml) with
`stagelab sweep` in a fresh workspace first (a few minutes on a CPU); with --workspace it
shows the newest sweep already there.

python packaging/sweep_screenshot.py [--out docs/screenshots] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
LARGE = (1400, 880)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--workspace", type=Path, help="a workspace with a finished sweep")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    workspace = args.workspace
    if workspace is None:
        workspace = Path(tempfile.mkdtemp(prefix="stagelab-sweep-shot-"))
        plan = ROOT / "resources" / "plans" / "sweep.yaml"
        subprocess.run(
            [sys.executable, "-m", "engine.cli", "--workspace", str(workspace), "sweep", str(plan)],
            check=True,
        )

    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_look import apply_system_theme
    from app.qt.qt_run_actions import SWEEPS_TAB

    app = QApplication([])
    apply_system_theme(app)
    window = create_main_window(str(workspace))
    window.resize(*LARGE)
    window.show()
    window.runs.show_tab(SWEEPS_TAB)
    view = window.runs.sweep_view
    # Best first: the order a person sorts a finished sweep by.
    view.table.sortByColumn(2, view.table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    for _ in range(5):
        app.processEvents()
    path = args.out / "sweep-view.png"
    window.grab().save(str(path))
    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
