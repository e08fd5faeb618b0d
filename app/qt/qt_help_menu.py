"""The Help menu: the documentation, the keyboard shortcuts of the window's actions, and
an About box with the versions a bug report needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

if TYPE_CHECKING:
    from PySide6.QtCore import QUrl

# What the menu's entries open is imported when one is chosen: each Qt class's first import
# makes its enums (QUrl, QDesktopServices: ~1.5 ms of every start).

DOCS_URL = "https://github.com/stagelab/stagelab/tree/main/docs"
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"


def versions() -> dict[str, str]:
    """Versions of Stagelab and of the libraries the window runs on (no torch: the window
    never imports it; the engine records its own with every run)."""
    import platform

    from PySide6.QtCore import qVersion

    out = {"Stagelab": _version("stagelab"), "Python": platform.python_version()}
    out["Qt"] = qVersion()
    for name in ("PySide6", "pyqtgraph", "pydantic", "SQLAlchemy"):
        out[name] = _version(name)
    return out


def _version(package: str) -> str:
    from importlib import metadata  # ~10 ms to import: not at start-up

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def shortcut_lines(window: QMainWindow) -> list[tuple[str, str]]:
    """(action, shortcut) of every window action that has one, in menu order."""
    seen, lines = set(), []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        for action in _walk(menu) if menu else []:
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            name = action.text().replace("&", "")
            if keys and name not in seen:
                seen.add(name)
                lines.append((name, keys))
    return lines


def _walk(menu: QMenu) -> list[QAction]:
    out = []
    for action in menu.actions():
        out += _walk(action.menu()) if action.menu() else [action]
    return out


def build_help_menu(window: QMainWindow) -> QMenu:
    """Add the Help menu to `window`'s menu bar."""
    menu = window.menuBar().addMenu("&Help")
    docs = menu.addAction("&Documentation")
    docs.setObjectName("helpDocs")
    docs.triggered.connect(lambda: open_docs())
    keys = menu.addAction("&Keyboard shortcuts")
    keys.setObjectName("helpShortcuts")
    keys.triggered.connect(lambda: show_shortcuts(window))
    about = menu.addAction("&About Stagelab")
    about.setObjectName("helpAbout")
    about.triggered.connect(lambda: show_about(window))
    return menu


def open_docs() -> None:
    from PySide6.QtGui import QDesktopServices

    QDesktopServices.openUrl(docs_url())


def docs_url() -> QUrl:
    """The docs beside the code when they are there (a source checkout), else online."""
    from PySide6.QtCore import QUrl

    if (DOCS_DIR / "gui.md").exists():
        return QUrl.fromLocalFile(str(DOCS_DIR))
    return QUrl(DOCS_URL)


def show_shortcuts(window: QMainWindow) -> None:
    from PySide6.QtWidgets import QMessageBox

    rows = "".join(
        f"<tr><td>{name}</td><td>&nbsp;&nbsp;<b>{keys}</b></td></tr>"
        for name, keys in shortcut_lines(window)
    )
    QMessageBox.information(window, "Keyboard shortcuts", f"<table>{rows}</table>")


def show_about(window: QMainWindow) -> None:
    from PySide6.QtWidgets import QMessageBox

    rows = "".join(f"<tr><td>{k}</td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in versions().items())
    QMessageBox.about(
        window,
        "About Stagelab",
        "<p><b>Stagelab</b>: multi-stage training of language models, planned, run, "
        f"watched and compared.</p><table>{rows}</table>",
    )
