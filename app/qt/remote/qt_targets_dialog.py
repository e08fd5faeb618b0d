"""Run → Targets…: the places runs can train (docs/targets.md). A list of the workspace's
targets (name, URL, kind, last check); Add (a form: URL, work folder, Python, key, SSH
options, Slurm settings for a Slurm URL), Remove (asks), Check (on a worker thread, its
lines shown as they come: Python, Stagelab, GPUs, disk, Slurm partitions). Errors are one
sentence in the dialog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.qt.remote.qt_task import QtTask

if TYPE_CHECKING:
    from engine.store.workspace import Workspace

ERROR_STYLE = "color: #b3261e;"
OK_STYLE = "color: #1b7f3b;"


class QtTargetsDialog(QDialog):
    """The workspace's targets; `targetsChanged` after an add, a removal or a check."""

    targetsChanged = Signal()

    def __init__(self, store_getter, workspace: Workspace, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("targetsDialog")
        self.setWindowTitle("Targets")
        self.store, self.workspace = store_getter, workspace
        self.task: QtTask | None = None
        hint = QLabel(
            "Machines runs can train on: an SSH workstation (<code>ssh://me@gpu-box</code>) "
            "or a Slurm cluster (<code>slurm+ssh://me@login</code>). Check one to install "
            "this Stagelab there and list its GPUs."
        )
        hint.setWordWrap(True)
        self.table = QTreeWidget()
        self.table.setObjectName("targetTable")
        self.table.setAccessibleName("Targets")
        self.table.setHeaderLabels(["Name", "URL", "Kind", "Last check"])
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.header().setStretchLastSection(False)
        self.table.itemSelectionChanged.connect(self._selected)
        self.add_button = self._push("Add…", "addTargetButton", self.add_target)
        self.remove_button = self._push("Remove…", "removeTargetButton", self.remove_target)
        self.check_button = self._push("Check", "checkTargetButton", self.check_target)
        self.check_button.setToolTip(
            "Connect, install this Stagelab there if needed, list its GPUs, disk and "
            "Slurm partitions"
        )
        self.busy = QProgressBar()
        self.busy.setObjectName("checkBusy")
        self.busy.setRange(0, 0)  # no length: it moves while the check runs
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.busy.hide()
        self.outcome = QLabel()
        self.outcome.setObjectName("checkResult")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lines = QPlainTextEdit()
        self.lines.setObjectName("checkLines")
        self.lines.setAccessibleName("Check output")
        self.lines.setReadOnly(True)
        self.lines.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.lines.setPlaceholderText("Select a target and press Check.")
        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.check_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.table, 3)
        layout.addLayout(buttons)
        layout.addWidget(self.busy)
        layout.addWidget(self.outcome)
        layout.addWidget(self.lines, 2)
        layout.addWidget(close)
        self.resize(760, 520)
        self.finished.connect(self._closing)
        self.reload()

    def _push(self, text: str, name: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setAccessibleName(text.rstrip("…"))
        button.clicked.connect(slot)
        return button

    # -- the list ---------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        """Read the targets again (keeps the selection)."""
        from engine.remote.target_checks import check_words
        from engine.remote.targets import TargetError, make_target
        from engine.store import queries

        select = select or self.selected_name()
        self.table.clear()
        for info in queries.list_targets(self.store()):
            try:
                kind = make_target(info.name, info.url, info.options).kind
            except TargetError:
                kind = "?"
            item = QTreeWidgetItem([info.name, info.url, kind, check_words(info.options)])
            item.setData(0, Qt.ItemDataRole.UserRole, info.name)
            item.setToolTip(1, info.url)
            self.table.addTopLevelItem(item)
            if info.name == select:
                item.setSelected(True)
                self.table.setCurrentItem(item)
        for column in (0, 2, 3):
            self.table.resizeColumnToContents(column)
        self._selected()

    def selected_name(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def select(self, name: str) -> None:
        self.reload(select=name)

    def _selected(self) -> None:
        name = self.selected_name()
        checking = self.task is not None and self.task.busy
        self.remove_button.setEnabled(name is not None and not checking)
        self.check_button.setEnabled(name is not None and not checking)
        if checking:
            return
        self.outcome.clear()
        self.lines.clear()
        if name is None:
            return
        from engine.remote.target_checks import last_check
        from engine.store import queries

        found = last_check(queries.get_target(self.store(), name).options)
        if found is not None:
            self.lines.setPlainText("\n".join(found.get("lines", [])))
            self._show_result(name, found.get("ok", False), found.get("error"))

    def _show_result(self, name: str, ok: bool, error: str | None) -> None:
        self.outcome.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)
        self.outcome.setText(f"✓ Target '{name}' is ready." if ok else f"✗ {error}")

    # -- buttons ----------------------------------------------------------------------------

    def add_target(self) -> None:
        from app.qt.remote.qt_add_target import QtAddTargetDialog

        form = QtAddTargetDialog(self.store, self)
        if form.exec() == QDialog.DialogCode.Accepted:
            self.reload(select=form.added)
            self.targetsChanged.emit()

    def remove_target(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        answer = QMessageBox.question(
            self,
            "Remove target",
            f"Forget target '{name}'? Its runs keep its name; nothing is removed on the "
            "machine itself.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        from engine.store import queries

        queries.remove_target(self.store(), name)
        self.reload()
        self.targetsChanged.emit()

    def check_target(self) -> None:
        """Check the selected target on a worker thread; its lines appear as they come."""
        name = self.selected_name()
        if name is None or (self.task is not None and self.task.busy):
            return
        from engine.remote.target_checks import CHECK_ERRORS, run_check
        from engine.remote.targets import get_target
        from engine.store.db import Store

        db, cache = self.workspace.db_path, self.workspace.root / "cache" / "wheels"

        def work(say, _progress):
            store = Store.open(db)  # a connection of the worker's own
            return run_check(store, get_target(store, name), cache, say=say)

        self.lines.clear()
        self.outcome.setStyleSheet("")
        self.outcome.setText(f"Checking '{name}'…")
        self.busy.show()
        self.task = QtTask(work, CHECK_ERRORS, self)
        self.task.said.connect(self.lines.appendPlainText)
        self.task.succeeded.connect(lambda _: self._checked(name, None))
        self.task.failed.connect(lambda error: self._checked(name, error))
        self.task.ended.connect(self._selected)  # Check and Remove again
        self.task.start()
        self._selected()

    def _checked(self, name: str, error: str | None) -> None:
        self.busy.hide()
        self.reload(select=name)
        self._show_result(name, error is None, error)
        self.targetsChanged.emit()

    def _closing(self) -> None:
        """A running check goes on in the background; its outcome is stored."""
        if self.task is not None:
            self.task.said.disconnect()
            self.task.succeeded.disconnect()
            self.task.failed.disconnect()
            self.task.ended.disconnect(self._selected)
            self.task = None
