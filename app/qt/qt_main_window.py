"""The main window: wires the palette, plan view, inspector, problems, LR preview and GPU
picker to one plan document and one undo stack. Parts live in their own modules."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.model.plan_document import PlanDocument
from app.qt.editor.qt_inspector import QtStageInspector
from app.qt.editor.qt_palette import QtStagePalette
from app.qt.editor.qt_plan_header import QtPlanHeader
from app.qt.editor.qt_plan_view import QtPlanView
from app.qt.editor.qt_problems import QtProblemsList
from app.qt.editor.undo import InsertStage, RemoveStage
from app.qt.qt_collector import collect_on_gui_thread
from app.qt.qt_file_actions import FileActions
from app.qt.qt_gpu_picker import QtGpuPicker
from app.qt.qt_help_menu import build_help_menu
from app.qt.qt_look import CompactTabs, app_icon
from app.qt.qt_queue_panel import QueueActions
from app.qt.qt_run_actions import RunActions
from app.qt.qt_run_buttons import RunButtons
from app.qt.qt_run_start import RunStart
from app.qt.qt_undo_actions import UndoActions
from app.qt.remote.qt_target_picker import QtTargetPicker
from engine.store.workspace import Workspace


class MainWindow(QMainWindow):
    """Stagelab's window with one plan open."""

    startCompleted = Signal()  # painted, memory line filled, LR preview made (app/__main__.py)

    def __init__(self, doc: PlanDocument, workspace: Workspace, settings: QSettings):
        super().__init__()
        self.setObjectName("mainWindow")
        # Qt objects must never be collected by a worker thread (app/qt/qt_collector.py).
        collect_on_gui_thread(self.startCompleted)
        self.workspace, self.settings = workspace, settings
        self._store = None
        self.undo_stack = QUndoStack(self)
        self.doc = doc

        self.palette_list = QtStagePalette()
        self.palette_list.itemDoubleClicked.connect(
            lambda item: self.plan_view.add_stage(
                item.data(Qt.ItemDataRole.UserRole), len(self.doc.stages)
            )
        )
        self.plan_view = QtPlanView(doc, self.undo_stack)
        self.inspector = QtStageInspector(doc, self.undo_stack)
        self.problems = QtProblemsList(doc)
        self.gpu_picker = QtGpuPicker(self.store)
        self.target_picker = QtTargetPicker(self.store, workspace, self.gpu_picker)  # above it
        self.plan_view.stageSelected.connect(self.inspector.show_stage)
        self.inspector.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.inspector.free_memory = self.gpu_picker.free_memory  # warns when a stage won't fit
        self.gpu_picker.itemChanged.connect(lambda _: self.inspector.refresh_memory())
        # Delete / Duplicate follow the selection, not only plan edits.
        self.plan_view.stageSelected.connect(lambda _: self._update_stage_actions())
        self.problems.stageActivated.connect(self.plan_view.select_row)

        bottom = QTabWidget()
        bottom.setObjectName("bottomTabs")
        self._lr_preview = None  # pyqtgraph loads after the window is up (start-up time)
        bottom.addTab(QLabel("Drawing the learning-rate preview…"), "Learning rate")
        bottom.addTab(self.problems, "Problems")
        self.bottom_tabs = bottom
        self.plan_header = QtPlanHeader(doc, self.undo_stack)
        plan_side = QWidget()
        plan_layout = QVBoxLayout(plan_side)
        plan_layout.setContentsMargins(0, 0, 0, 0)
        plan_layout.setSpacing(0)
        plan_layout.addWidget(self.plan_header)
        plan_layout.addWidget(self.plan_view, 1)
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(plan_side)
        centre.addWidget(bottom)
        centre.setSizes([520, 260])
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self._tab_style = CompactTabs()  # kept: a widget does not own its style
        self.tabs.tabBar().setStyle(self._tab_style)
        self.tabs.addTab(centre, "Plan")
        self.runs = RunActions(self, self.tabs)
        self.run_start = RunStart(self)
        self._playground = None  # made when first shown (start-up time)
        self._playground_tab = self.tabs.addTab(QLabel("Loading the playground…"), "Playground")
        self.setCentralWidget(self.tabs)
        self.experiment_id: str | None = None  # the experiment the plan was opened from
        # A clone is recorded as an experiment on its first run, not when Clone is pressed
        # (each click used to leave an empty experiment behind): until then, its parent.
        self.clone_of: str | None = None
        self._docks: list[QDockWidget] = []
        self._docks_shown: list[QDockWidget] | None = None
        self.palette_dock = self._dock(
            "Stages", self.palette_list, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self._dock("Devices", self.target_picker, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = self._dock(
            "Stage settings", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self._dock_widths: list[int] | None = None  # widths before the docks were hidden

        self.plan_state = QLabel()
        self.statusBar().addPermanentWidget(self.plan_state)
        self.files = FileActions(self)
        self._build_actions()
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.inspector.estimate_after_paint()
        self._follow(doc)
        self.tabs.installEventFilter(self)  # its first paint starts what waited for it
        self.resize(1400, 880)
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
            self.restoreState(settings.value("window/state", QByteArray()))
        self.fit_docks(fresh=not isinstance(geometry, QByteArray))

    # -- parts ------------------------------------------------------------------------------

    @property
    def lr_preview(self):
        """The learning-rate plot (made on first use: pyqtgraph takes ~0.5 s to import)."""
        if self._lr_preview is None:
            from app.qt.editor.qt_lr_preview import QtLrPreview

            self._lr_preview = QtLrPreview(self.doc, self)
            current = self.bottom_tabs.currentIndex()
            self.bottom_tabs.removeTab(0)
            self.bottom_tabs.insertTab(0, self._lr_preview, "Learning rate")
            self.bottom_tabs.setCurrentIndex(current)
        return self._lr_preview

    @property
    def playground(self):
        """The Playground tab's widget, made on first use; its workers start when an output
        is picked."""
        if self._playground is None:
            from app.qt.playground.qt_playground import QtPlayground

            self._playground = QtPlayground(self.store)
            self.runs.swap_tab(self._playground_tab, self._playground, "Playground")
        return self._playground

    def eventFilter(self, watched, event) -> bool:  # noqa: N802
        if watched is self.tabs and event.type() == QEvent.Type.Paint:
            self.tabs.removeEventFilter(self)
            QTimer.singleShot(0, self, self._after_first_paint)  # once this paint is shown
        return super().eventFilter(watched, event)

    def _after_first_paint(self) -> None:
        """What the first paint did without: the memory estimate (~0.1 s), then the window
        icon and the LR preview (pyqtgraph), each in its own turn of the event loop so each
        shows at once."""
        self.inspector.first_paint_done()
        QTimer.singleShot(0, self, self._after_memory_line)  # not if the window is gone

    def _after_memory_line(self) -> None:
        self.setWindowIcon(app_icon())  # reads 9 files, loads the SVG plugin: ~10 ms
        _ = self.lr_preview
        self.startCompleted.emit()

    def store(self):
        """The workspace's experiment store, opened on first use (not at start-up)."""
        if self._store is None:
            from engine.store.db import Store

            self._store = Store.open(self.workspace.db_path)
        return self._store

    def fit_docks(self, fresh: bool = False) -> None:
        """Give the palette and the inspector their share of the window: defaults on a
        fresh start, else the widths they have (a restored layout, a resize), kept within
        a fraction of the window so the plan in the middle is never squeezed."""
        width = self.width()
        shares = ((self.palette_dock, 0.18, 0.24), (self.inspector_dock, 0.32, 0.36))
        docks, widths = [], []
        for dock, default, most in shares:
            if dock.isFloating() or not dock.isVisible() and not fresh:
                continue
            least = dock.widget().minimumWidth()
            wanted = int(default * width) if fresh else dock.width()
            docks.append(dock)
            widths.append(max(least, min(wanted, int(most * width))))
        if docks:
            self.resizeDocks(docks, widths, Qt.Orientation.Horizontal)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.tabs.currentIndex() == 0:
            QTimer.singleShot(0, self.fit_docks)  # the window has its final size now

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.isVisible() and self.tabs.currentIndex() == 0:
            self.fit_docks()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{widget.objectName()}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        self._docks.append(dock)
        return dock

    def _build_actions(self) -> None:
        edit = self.menuBar().addMenu("&Edit")
        self.undo_actions = UndoActions(self, self.undo_stack)
        edit.addActions(self.undo_actions.menu_actions)
        edit.addSeparator()
        self.duplicate_action = self._action(
            edit, "&Duplicate stage", "Ctrl+D", self.duplicate_stage
        )
        self.duplicate_action.setObjectName("duplicateStageAction")
        self.delete_action = self._action(
            edit, "De&lete stage", QKeySequence.StandardKey.Delete, self.delete_stage
        )
        self.delete_action.setObjectName("deleteStageAction")
        self.menuBar().insertMenu(edit.menuAction(), self.files.menu)
        run_menu = self.menuBar().addMenu("&Run")
        buttons = RunButtons(self, run_menu, self.tabs, self.run_plan, self.run_sweep)
        self.run_buttons = buttons
        self.run_action, self.run_sweep_action = buttons.run_action, buttons.run_sweep_action
        self.run_button, self.sweep_button = buttons.run_button, buttons.sweep_button
        run_menu.addSeparator()
        self.sweep_action = self._action(run_menu, "&Sweep…", "", self.edit_sweep)
        self.targets_action = self._action(
            run_menu, "&Targets…", "", lambda: self.target_picker.edit_targets()
        )
        self.targets_action.setObjectName("targetsAction")
        run_menu.addSeparator()
        self.queue_actions = QueueActions(self, run_menu)  # Add to queue, the Queue panel
        view = self.menuBar().addMenu("&View")
        # The docks as made, not findChildren: that wraps every widget of the window for
        # Python (~4 ms of the start).
        for dock in (*self._docks, self.queue_actions.dock):
            view.addAction(dock.toggleViewAction())
        build_help_menu(self)

        toolbar = QToolBar("Plan")
        toolbar.setObjectName("planToolbar")
        toolbar.addActions([self.files.new_action, self.files.open_action, self.files.save_action])
        toolbar.addSeparator()
        toolbar.addActions(self.undo_actions.toolbar_actions)
        spacer = QWidget()
        spacer.setSizePolicy(
            spacer.sizePolicy().horizontalPolicy().Expanding, spacer.sizePolicy().verticalPolicy()
        )
        toolbar.addWidget(spacer)
        buttons.add_to(toolbar)
        self._sweep_button_slot = buttons.sweep_slot
        for action in (self.files.new_action, self.files.open_action, self.files.save_action):
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            action.setToolTip(f"{action.text().replace('&', '').rstrip('…')} ({keys})")
        self.addToolBar(toolbar)

    def _action(self, menu, text: str, shortcut, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    # -- the plan ---------------------------------------------------------------------------

    def set_document(
        self, doc: PlanDocument, experiment_id: str | None = None, clone_of: str | None = None
    ) -> None:
        """Show another plan (from a file, the plan of `experiment_id`, or a clone of the
        plan of `clone_of`); its undo history starts empty."""
        self.undo_stack.clear()
        self.doc = doc
        self.experiment_id, self.clone_of = experiment_id, clone_of
        parts = (self.plan_header, self.plan_view, self.inspector, self.problems, self.lr_preview)
        for part in parts:
            part.set_document(doc)
        self._follow(doc)

    def _follow(self, doc: PlanDocument) -> None:
        doc.problems_changed.connect(self._update_state)
        doc.file_changed.connect(self._update_state)
        self._update_state()
        self.plan_view.select_row(0 if doc.stages else -1)

    def _update_state(self) -> None:
        count = len(self.doc.shown_problems)
        problems = f"{count} problem{'s' * (count != 1)}"
        runnable = self.doc.is_valid and bool(self.doc.stages)
        self.run_buttons.show_state(self.doc, on_plan_tab=self.tabs.currentIndex() == 0)
        self.bottom_tabs.setTabText(1, f"Problems ({count})" if count else "Problems")
        self.setWindowModified(self.doc.is_dirty)
        self.setWindowTitle(f"{self.doc.title}[*] — Stagelab")
        self._update_stage_actions()
        self.plan_state.setText(
            "Plan is valid" if runnable else problems if count else "Add stages from the palette"
        )

    def _on_tab_changed(self, index: int) -> None:
        if index == self._playground_tab:
            _ = self.playground
        self.undo_actions.set_plan_visible(index == 0)
        self._update_state()

    def _update_stage_actions(self) -> None:
        # Only on the Plan tab: Del in the experiment browser must not delete a stage.
        has_stage = self.plan_view.selected_row() >= 0 and self.tabs.currentIndex() == 0
        self.duplicate_action.setEnabled(has_stage)
        self.delete_action.setEnabled(has_stage)

    def duplicate_stage(self) -> None:
        """Copy the selected stage, under a new name, right after it."""
        from app.model.stage_catalog import unique_name

        row = self.plan_view.selected_row()
        if row < 0:
            return
        stage = self.doc.stage(row)
        stage["name"] = unique_name(f"{stage.get('name', 'stage')}-copy", self.doc.stage_names())
        self.undo_stack.push(
            InsertStage(self.doc, row + 1, stage, f"Duplicate stage '{stage['name']}'")
        )
        self.plan_view.select_row(row + 1)

    def delete_stage(self) -> None:
        """Delete the selected stage (undo brings it back)."""
        row = self.plan_view.selected_row()
        if row >= 0:
            self.undo_stack.push(RemoveStage(self.doc, row))
            self.plan_view.select_row(min(row, len(self.doc.stages) - 1))

    def edit_sweep(self) -> None:
        """The plan's sweep section in a small form (docs/sweeps.md)."""
        from app.qt.sweep.qt_sweep_form import edit_sweep

        edit_sweep(self.doc, self.undo_stack, self)

    def run_plan(self) -> None:
        """Save the plan into a new run, start its engine and watch it (qt_run_start.py)."""
        self.run_start.run_plan()

    def run_sweep(self) -> None:
        """Record the plan's sweep, start it and follow it in the Sweeps tab."""
        self.run_start.run_sweep()

    def show_plan_docks(self, on: bool) -> None:
        """The editor's docks belong to the Plan tab: hidden on the others, back as they
        were on return."""
        self._update_stage_actions()
        docks = self.findChildren(QDockWidget)
        if not on and self._docks_shown is None:
            self._docks_shown = [d for d in docks if d.isVisible()]
            self._dock_widths = [self.palette_dock.width(), self.inspector_dock.width()]
            for dock in docks:
                dock.hide()
        elif on and self._docks_shown is not None:
            for dock in self._docks_shown:
                dock.show()
            self._docks_shown = None
            if self._dock_widths is not None:  # as they were, not as Qt re-shares them
                docks = [self.palette_dock, self.inspector_dock]
                self.resizeDocks(docks, self._dock_widths, Qt.Orientation.Horizontal)
            self.fit_docks()

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.files.maybe_save():
            event.ignore()
            return
        self.show_plan_docks(True)  # the saved layout is the editor's
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.gpu_picker.timer.stop()
        self.runs.close()
        if self._playground is not None:
            self._playground.close_workers()
        event.accept()
