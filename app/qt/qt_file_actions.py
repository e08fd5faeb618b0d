"""File menu: new from template, open, recent files, save, save as, and the
unsaved-changes prompt. The last folder and recent files are remembered (QSettings)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from app.model.plan_document import PlanDocument
from engine.resources import plan_templates
from engine.spec import PlanInvalid

if TYPE_CHECKING:
    from app.qt.qt_main_window import MainWindow

PLAN_FILTER = "Stage plans (*.yaml *.yml *.json);;All files (*)"
MAX_RECENT = 8


class FileActions:
    """The File menu of a main window."""

    def __init__(self, window: MainWindow):
        self.window = window
        self.settings = window.settings
        self.menu = QMenu("&File", window)
        templates = self.menu.addMenu("New from &template")
        for path in plan_templates():
            action = templates.addAction(path.stem)
            action.triggered.connect(lambda _=False, p=path: self.new_from(p))
        self.new_action = self._add("&New plan", QKeySequence.StandardKey.New, self.new_empty)
        self.open_action = self._add("&Open…", QKeySequence.StandardKey.Open, self.open_dialog)
        self.recent_menu = self.menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.menu.addSeparator()
        self.save_action = self._add("&Save", QKeySequence.StandardKey.Save, self.save)
        self._add("Save &as…", QKeySequence.StandardKey.SaveAs, self.save_as)
        self.menu.addSeparator()
        # Ctrl+Q everywhere (the platform's Quit key is empty on some desktops).
        self._add("&Quit", "Ctrl+Q", window.close).setObjectName("quitAction")

    def _add(self, text: str, shortcut, slot) -> QAction:
        action = QAction(text, self.window)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _=False: slot())
        self.menu.addAction(action)
        return action

    # -- opening ----------------------------------------------------------------------------

    def new_empty(self) -> None:
        """Start an empty plan (in the last folder used)."""
        if self.maybe_save():
            self.window.set_document(PlanDocument.empty(self.last_folder()))

    def new_from(self, template: Path) -> None:
        """Start a new plan from a shipped template."""
        if self.maybe_save():
            self.window.set_document(PlanDocument.from_file(template, as_template=True))

    def open_dialog(self) -> None:
        """Ask for a plan file and open it."""
        if not self.maybe_save():
            return
        name, _ = QFileDialog.getOpenFileName(
            self.window, "Open plan", str(self.last_folder()), PLAN_FILTER
        )
        if name:
            self.open(Path(name))

    def open(self, path: Path) -> bool:
        """Open a plan file (a plan with invalid settings opens with its problems listed)."""
        try:
            doc = PlanDocument.from_file(path)
        except PlanInvalid as exc:
            QMessageBox.warning(
                self.window, "Cannot open plan", "\n".join(str(p) for p in exc.problems)
            )
            return False
        self.window.set_document(doc)
        self._remember(doc.path)
        return True

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for name in self.recent():
            action = self.recent_menu.addAction(name)
            action.triggered.connect(
                lambda _=False, n=name: self.maybe_save() and self.open(Path(n))
            )
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    # -- saving -----------------------------------------------------------------------------

    def save(self) -> bool:
        """Save to the plan's file, asking for a name if it has none. False if not saved."""
        if self.window.doc.path is None:
            return self.save_as()
        return self._write(self.window.doc.path)

    def save_as(self) -> bool:
        """Ask for a file name and save there (relative paths are kept pointing at the
        same files)."""
        doc = self.window.doc
        start = doc.path or self.last_folder() / f"{doc.data.get('name') or 'plan'}.yaml"
        name, _ = QFileDialog.getSaveFileName(self.window, "Save plan", str(start), PLAN_FILTER)
        if not name:
            return False
        path = Path(name)
        return self._write(path if path.suffix else path.with_suffix(".yaml"))

    def _write(self, path: Path) -> bool:
        doc = self.window.doc
        if str(doc.data.get("name") or "untitled") == "untitled":
            # A plan never named takes the file's name (an undo step), not 'untitled'.
            from app.qt.editor.undo import SetPlanValue

            self.window.undo_stack.push(SetPlanValue(doc, "name", path.stem))
        try:
            self.window.doc.save(path)
        except OSError as exc:
            QMessageBox.critical(
                self.window,
                "Plan not saved",
                f"Could not write {path}: {exc.strerror or exc}. Choose another place with "
                "File → Save as.",
            )
            return False
        self._remember(self.window.doc.path)
        self.window.undo_stack.setClean()
        return True

    def maybe_save(self) -> bool:
        """Ask what to do with unsaved changes. False if the person cancelled."""
        doc = self.window.doc
        if not doc.is_dirty:
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved changes",
            f"Save the changes to {doc.title} first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # -- remembered -------------------------------------------------------------------------

    def recent(self) -> list[str]:
        """Recently opened or saved plans that still exist, newest first."""
        names = self.settings.value("files/recent", []) or []
        names = [names] if isinstance(names, str) else list(names)
        return [n for n in names if Path(n).exists()]

    def last_folder(self) -> Path:
        """The folder of the last plan opened or saved (home at first)."""
        return Path(str(self.settings.value("files/last_folder", str(Path.home()))))

    def _remember(self, path: Path | None) -> None:
        if path is None:
            return
        names = [str(path)] + [n for n in self.recent() if n != str(path)]
        self.settings.setValue("files/recent", names[:MAX_RECENT])
        self.settings.setValue("files/last_folder", str(path.parent))
