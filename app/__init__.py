"""Stagelab's desktop window (Qt). Never imports torch, transformers or datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.qt.qt_main_window import MainWindow


def create_main_window(
    workspace: str | Path | None = None, plan: str | Path | None = None
) -> MainWindow:
    """Build the main window without showing it (a QApplication must exist).

    Args:
        workspace: folder with stagelab.db and runs/ (default: STAGELAB_HOME or the
            per-user data folder).
        plan: plan file to open (default: a new plan from the built-in demo).
    """
    from PySide6.QtCore import QSettings

    from app.qt.qt_import_tax import quicker_source_check

    quicker_source_check()  # before the window's modules are imported
    from app.model.plan_document import PlanDocument
    from app.qt.qt_main_window import MainWindow
    from engine.resources import demo_plan_path
    from engine.store.workspace import Workspace

    ws = Workspace.open(workspace)
    settings = QSettings(str(ws.root / "gui.ini"), QSettings.Format.IniFormat)
    if plan is None:
        doc = PlanDocument.from_file(demo_plan_path(), as_template=True)
    else:
        doc = PlanDocument.from_file(plan)
    return MainWindow(doc, ws, settings)
