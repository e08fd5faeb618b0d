"""Walks one menu (or the toolbar) of a real main window as a person would: triggers every
action, and for every dialog that opens grabs it to a PNG and, in turn, clicks each of
its buttons (the action is triggered again for each button). Run as a process by
tests/app/test_every_action.py, so a crash (Qt segfaults on some Python mistakes, such as
a widget attribute named after a Qt method) fails one test instead of the suite.

    python tests/app/walk_window.py MENU PLAN WORKSPACE OUT_DIR

MENU is a menu's title without '&' ("File", "Run" …) or "toolbar". The report, one JSON
document, goes to OUT_DIR/report.json."""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Actions that start training processes ("Run plan", "Run sweep (6 trials)", the toolbar's
# Run button): tests/app/test_run_action.py and the sweep tests start them with plans sized
# for a test; the walk would start the template's whole run.
STARTS_TRAINING = "Run"


def main(menu_title: str, plan: str, workspace: str, out_dir: str) -> int:
    faulthandler.enable()
    faulthandler.dump_traceback_later(
        int(os.environ.get("WALK_TIMEOUT", "240")), exit=True
    )  # a dialog nobody closes ends the walk
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import (
        QAbstractButton,
        QApplication,
        QDialog,
        QDialogButtonBox,
        QMenu,
        QPushButton,
        QToolBar,
    )

    from app import create_main_window
    from app.model.plan_document import PlanDocument

    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)  # Quit is walked too; the walk goes on after it
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    window = create_main_window(Path(workspace))
    window.set_document(PlanDocument.from_file(plan, as_template=True))
    window.resize(1400, 880)
    window.show()
    report: dict = {
        "menus": [a.text().replace("&", "") for a in window.menuBar().actions()],
        "actions": [],
        "dialogs": [],
        "skipped": [],
    }

    def actions_of(menu: QMenu) -> list:
        found = []
        for action in menu.actions():
            if action.isSeparator():
                continue
            sub = action.menu()
            if sub is not None:
                sub.aboutToShow.emit()  # menus filled on demand (Open recent)
                found += actions_of(sub)
            else:
                found.append(action)
        return found

    if menu_title == "toolbar":
        bar = window.findChild(QToolBar, "planToolbar")
        # (widget actions — the spacer, the Run button — have no text; buttons below)
        actions = [a for a in bar.actions() if a.text() and a.isVisible()]
        buttons = [
            b for b in bar.findChildren(QPushButton) if b.text().strip()
        ]  # widgets on the toolbar (Run)
    else:
        menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions()}
        actions, buttons = actions_of(menus[menu_title]), []

    def fresh() -> None:
        """The walked plan, untitled and with an unsaved edit, before every trigger: each
        button meets the same dialog (a Save clicked before would leave nothing to ask)."""
        from app.qt.editor.undo import SetPlanValue

        window.set_document(PlanDocument.from_file(plan, as_template=True))
        window.plan_view.select_row(0)
        doc = window.doc
        window.undo_stack.push(SetPlanValue(doc, "name", f"{doc.data.get('name')}-x"))

    def run_with_dialogs(trigger, label: str, button_index: int | None) -> list[dict]:
        """Trigger; each modal dialog that opens is grabbed, then button `button_index` of
        the first dialog is clicked (None: it is rejected); a dialog that stays open after
        the click, and every nested dialog, is rejected."""
        seen: list[dict] = []
        # The dialogs themselves, held: a wrapper let go may come back under another id.
        handled: list = []

        def tick() -> None:
            modal = app.activeModalWidget()
            popup = app.activePopupWidget()
            if popup is not None:
                popup.close()
            if modal is None:
                return
            if any(modal is h for h in handled):
                _close(modal)
                return
            handled.append(modal)
            name = f"{len(report['dialogs']) + len(seen):03d}-{_slug(label)}.png"
            modal.grab().save(str(out / name))
            clickable = _buttons(modal)
            entry = {
                "action": label,
                "title": modal.windowTitle(),
                "class": type(modal).__name__,
                "png": name,
                "buttons": [b.text().replace("&", "") for b in clickable],
                "clicked": None,
                "nested": bool(seen),
            }
            seen.append(entry)
            if len(seen) == 1 and button_index is not None and button_index < len(clickable):
                entry["clicked"] = entry["buttons"][button_index]
                # Queued: a click that opens another dialog must not block this tick (a
                # timer does not fire again while its own slot runs).
                QTimer.singleShot(0, clickable[button_index].click)
            else:
                _close(modal)

        timer = QTimer()
        timer.timeout.connect(tick)
        timer.start(30)
        trigger()
        # Dialogs opened by a queued call, and the window's own follow-ups, settle here.
        for _ in range(5):
            app.processEvents()
            tick()
        timer.stop()
        return seen

    def _close(modal) -> None:
        if isinstance(modal, QDialog):
            modal.reject()
        else:
            modal.close()

    def _buttons(modal) -> list:
        """The buttons a person reads as the dialog's own: its button boxes and push
        buttons (not the file dialog's tool buttons)."""
        found = []
        for box in modal.findChildren(QDialogButtonBox):
            found += [b for b in box.buttons() if b.isVisible()]
        for b in modal.findChildren(QPushButton):
            if b not in found and b.isVisible() and isinstance(b, QAbstractButton):
                found.append(b)
        return found

    def walk(label: str, trigger, enabled: bool) -> None:
        if label.split(" ")[0] == STARTS_TRAINING:
            report["skipped"].append(label)
            return
        if not enabled:
            report["actions"].append({"action": label, "enabled": False})
            return
        fresh()
        first = run_with_dialogs(trigger, label, None)
        report["dialogs"] += first
        clicks = len(first[0]["buttons"]) if first else 0
        for index in range(clicks):
            if not window.isVisible():
                window.show()
            fresh()
            report["dialogs"] += run_with_dialogs(trigger, label, index)
        if not window.isVisible():
            window.show()  # Quit (after Discard) closed it
        report["actions"].append({"action": label, "enabled": True, "buttons": clicks})
        window.grab().save(str(out / f"window-after-{_slug(label)}.png"))

    for action in actions:
        label = action.text().replace("&", "")
        walk(label, action.trigger, action.isEnabled())
    for button in buttons:
        label = button.text().replace("▶", "").strip()
        walk(label, button.click, button.isEnabled())
    if menu_title == "toolbar":  # every tab once, so each view is built and painted
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            app.processEvents()
            window.grab().save(str(out / f"tab-{index}.png"))
        window.tabs.setCurrentIndex(0)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    window.doc._saved_text = window.doc.to_yaml()  # no prompt on the way out
    window.close()
    return 0


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()[:40]


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
