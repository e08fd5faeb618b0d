"""The queue in the window (docs/gui.md, "The queue"): Run → Add to queue puts the plan's
file with the Devices dock's target or GPUs at the end of the workspace's queue; the Queue
panel lists it with each item's status, removes a waiting item and starts the queue
runner as a process of its own (`stagelab queue run --detach`), so closing the window
never stops the queue. The panel reads the store every few seconds while it is shown."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

REFRESH_MS = 2000
COLUMNS = ("#", "Status", "Plan", "Where", "Run", "Added", "Why")


class QtQueuePanel(QWidget):
    """The queue's items, Remove and Start queue."""

    openRun = Signal(str)  # run id: the window shows it in the monitor

    def __init__(self, store_getter, workspace, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("queuePanel")
        self.store_getter, self.workspace = store_getter, workspace
        self.items: list[Any] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("queueTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        rows = self.table.verticalHeader()
        rows.setDefaultSectionSize(self.table.fontMetrics().height() + 8)  # compact rows
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(self._open)
        self.runner_label = QLabel()
        self.runner_label.setObjectName("queueRunnerLabel")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("queueRemoveButton")
        self.remove_button.setToolTip("Take the selected waiting plan out of the queue")
        self.remove_button.clicked.connect(self.remove_selected)
        self.start_button = QPushButton("Start queue")
        self.start_button.setObjectName("queueStartButton")
        self.start_button.setToolTip(
            "Run the waiting plans one after another in a process of their own "
            "(closing the window does not stop it)"
        )
        self.start_button.clicked.connect(self.start_queue)
        buttons = QHBoxLayout()
        buttons.addWidget(self.runner_label, 1)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.start_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.runner_process = None  # the runner this window started (reaped on refresh)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()
        self.timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802
        self.timer.stop()
        super().hideEvent(event)

    def refresh(self) -> None:
        """Read the queue and whether a runner holds it."""
        from engine.queue.runner import runner_alive
        from engine.store.queue import list_queue
        from engine.store.status import QueueStatus

        if self.runner_process is not None and self.runner_process.poll() is not None:
            self.runner_process = None
        chosen = self.selected_item()
        self.items = list_queue(self.store_getter())
        self.table.setRowCount(len(self.items))
        for row, item in enumerate(self.items):
            where = item.target or ("CPU" if item.gpus == "cpu" else f"GPU {item.gpus}")
            added = time.strftime("%d %b %H:%M", time.localtime(item.created_ms / 1000))
            cells = (str(item.id), item.status, item.plan_path, where, item.run_id or "")
            for col, value in enumerate((*cells, added, item.error or "")):
                cell = QTableWidgetItem(value)
                if col == 2:
                    cell.setText(value.rsplit("/", 1)[-1])
                    cell.setToolTip(value)
                if col == 6:
                    cell.setToolTip(value)
                self.table.setItem(row, col, cell)
            if chosen is not None and item.id == chosen.id:
                self.table.selectRow(row)
        waiting = sum(i.status == QueueStatus.WAITING for i in self.items)
        alive = runner_alive(self.workspace.root)
        self.runner_label.setText(
            f"Queue running · {waiting} waiting"
            if alive
            else f"Queue stopped · {waiting} waiting"
            if waiting
            else "Nothing waiting: Run → Add to queue"
        )
        self.start_button.setEnabled(not alive and waiting > 0)
        self._update_buttons()

    def selected_item(self) -> Any | None:
        rows = self.table.selectionModel().selectedRows()
        return self.items[rows[0].row()] if rows and rows[0].row() < len(self.items) else None

    def _update_buttons(self) -> None:
        item = self.selected_item()
        from engine.store.status import QueueStatus

        self.remove_button.setEnabled(item is not None and item.status == QueueStatus.WAITING)

    def remove_selected(self) -> None:
        """Take the selected waiting item out of the queue."""
        from engine.store.queue import remove_queue_item
        from engine.store.records import StoreError

        item = self.selected_item()
        if item is None:
            return
        try:
            remove_queue_item(self.store_getter(), item.id)
        except StoreError as exc:
            self.runner_label.setText(str(exc))
            return
        self.table.clearSelection()
        self.table.setCurrentCell(-1, -1)
        self.refresh()

    def start_queue(self) -> None:
        """Start the queue runner (detached) unless one runs."""
        from engine.queue.runner import runner_alive, start_detached

        if not runner_alive(self.workspace.root):
            self.runner_process = start_detached(self.workspace.root)
        self.refresh()

    def _open(self, row: int, _col: int) -> None:
        if row < len(self.items) and self.items[row].run_id:
            self.openRun.emit(self.items[row].run_id)


class QueueActions:
    """Run → Add to queue and Run → Queue, and the Queue dock of a main window."""

    def __init__(self, window: Any, run_menu: Any):
        self.window = window
        self._panel: QtQueuePanel | None = None  # made when the dock is first shown
        self.dock = QDockWidget("Queue", window)
        self.dock.setObjectName("dock_queuePanel")  # made now: a saved layout may show it
        self.dock.visibilityChanged.connect(lambda shown: shown and self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()  # opened by Run → Queue or Add to queue
        self.add_action = QAction("Add to &queue", window)
        self.add_action.setObjectName("addToQueueAction")
        self.add_action.setToolTip("Put this plan, on the chosen target or GPUs, in the queue")
        self.add_action.triggered.connect(self.add_plan)
        self.show_action = QAction("&Queue", window)
        self.show_action.setObjectName("showQueueAction")
        self.show_action.triggered.connect(self.show_queue)
        run_menu.addActions([self.add_action, self.show_action])

    @property
    def panel(self) -> QtQueuePanel:
        """The panel in the dock, made on first use: its table is hidden at start-up."""
        if self._panel is None:
            self._panel = QtQueuePanel(self.window.store, self.window.workspace)
            self._panel.openRun.connect(lambda run_id: self.window.runs.open_run(run_id))
            self.dock.setWidget(self._panel)
        return self._panel

    def add_plan(self) -> None:
        """Add the plan's file (saved first) with the picked target or GPUs."""
        from engine.store.queue import add_queue_item

        win, doc = self.window, self.window.doc
        if not (doc.is_valid and doc.stages):
            win.statusBar().showMessage("Fix the plan's problems before queueing it", 8000)
            return
        if (doc.path is None or doc.is_dirty) and not win.files.save():
            return  # the queue runs plan files: saving was refused
        target = win.target_picker.target_name() or None
        gpus = win.gpu_picker.selection()
        item = add_queue_item(win.store(), str(doc.path), target=target, gpus=gpus)
        where = target or ("CPU" if gpus == "cpu" else f"GPU {gpus}")
        win.statusBar().showMessage(f"Queued {doc.path.name} ({where}) as item {item.id}", 8000)
        self.show_queue()

    def show_queue(self) -> None:
        """Show the Queue panel (on the Plan tab, with the editor's docks)."""
        if self.window.tabs.currentIndex() != 0:
            self.window.tabs.setCurrentIndex(0)
        first = not self.dock.isVisible()
        self.dock.show()
        self.dock.raise_()
        if first:  # a strip under the plan, not half the window
            height = max(150, self.window.height() // 4)
            self.window.resizeDocks([self.dock], [height], Qt.Orientation.Vertical)
        self.panel.refresh()
