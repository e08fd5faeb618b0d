"""The main window: wires the palette, plan view, inspector, problems, LR preview and GPU
picker to one plan document and one undo stack. Parts live in their own modules."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
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
from app.qt.playground.qt_playground import QtPlayground
from app.qt.qt_file_actions import FileActions
from app.qt.qt_gpu_picker import QtGpuPicker
from app.qt.qt_help_menu import build_help_menu
from app.qt.qt_look import CompactTabs, app_icon
from app.qt.qt_run_actions import RunActions
from app.qt.qt_undo_actions import UndoActions
from engine.store.workspace import Workspace


class MainWindow(QMainWindow):
    """Stagelab's window with one plan open."""

    def __init__(self, doc: PlanDocument, workspace: Workspace, settings: QSettings):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
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
        self.playground = QtPlayground(self.store)  # its workers start when an output is picked
        self.tabs.addTab(self.playground, "Playground")
        self.setCentralWidget(self.tabs)
        self.experiment_id: str | None = None  # the experiment the plan was opened from
        # A clone is recorded as an experiment on its first run, not when Clone is pressed
        # (each click used to leave an empty experiment behind): until then, its parent.
        self.clone_of: str | None = None
        self._docks_shown: list[QDockWidget] | None = None
        self._dock("Stages", self.palette_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Devices", self.gpu_picker, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = self._dock(
            "Stage settings", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.palette_dock = self.findChild(QDockWidget, "dock_stagePalette")
        self._dock_widths: list[int] | None = None  # widths before the docks were hidden

        self.plan_state = QLabel()
        self.statusBar().addPermanentWidget(self.plan_state)
        self.files = FileActions(self)
        self._build_actions()
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._follow(doc)
        QTimer.singleShot(50, lambda: self.lr_preview)  # after the first paint
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
        self.run_action = self._action(run_menu, "&Run plan", "Ctrl+R", self.run_plan)
        self.run_sweep_action = self._action(run_menu, "Run s&weep", "Ctrl+Shift+R", self.run_sweep)
        self.run_sweep_action.setObjectName("runSweepAction")
        run_menu.addSeparator()
        self.sweep_action = self._action(run_menu, "&Sweep…", "", self.edit_sweep)
        view = self.menuBar().addMenu("&View")
        for dock in self.findChildren(QDockWidget):
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
        self.run_button = QPushButton("▶  Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setAccessibleName("Run")
        self.run_button.setToolTip("Save the plan and start a run (Ctrl+R)")
        self.run_button.setMinimumWidth(110)
        self.run_button.clicked.connect(self.run_plan)
        # Shown while the plan has a sweep section, beside Run (then "Run once").
        self.sweep_button = QPushButton("▶  Run sweep")
        self.sweep_button.setObjectName("runSweepButton")
        self.sweep_button.setAccessibleName("Run sweep")
        self.sweep_button.clicked.connect(self.run_sweep)
        self._sweep_button_slot = toolbar.addWidget(self.sweep_button)
        toolbar.addWidget(self.run_button)
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
        self.run_button.setEnabled(runnable)
        self.run_action.setEnabled(runnable)
        self.run_button.setToolTip(
            "Save the plan and start a run (Ctrl+R)"
            if runnable
            else f"Fix the {problems} listed under Problems first"
            if count
            else "Add stages from the palette first"
        )
        self._update_sweep_state(runnable, problems if count else "")
        self.bottom_tabs.setTabText(1, f"Problems ({count})" if count else "Problems")
        self.setWindowModified(self.doc.is_dirty)
        self.setWindowTitle(f"{self.doc.title}[*] — Stagelab")
        self._update_stage_actions()
        if self.tabs.currentIndex() != 0:
            # Run acts on the plan: offered where the plan is seen (the Plan tab).
            for part in (self.run_button, self.run_action, self.sweep_button):
                part.setEnabled(False)
                part.setToolTip("Go to the Plan tab to run the plan you see there")
            self.run_sweep_action.setEnabled(False)
        self.plan_state.setText(
            "Plan is valid" if runnable else problems if count else "Add stages from the palette"
        )

    def _update_sweep_state(self, runnable: bool, problems: str) -> None:
        """Run sweep, the Run button's words and the Plan tab's badge follow whether the
        plan has a sweep section (and is valid)."""
        sweep = self.doc.data.get("sweep")
        has_sweep = isinstance(sweep, dict)
        trials = sweep_trials(sweep) if has_sweep else 0
        self.tabs.setTabText(0, "Plan · sweep" if has_sweep else "Plan")
        self.tabs.setTabToolTip(
            0,
            f"The plan has a sweep of {trials} trials (Run → Sweep… to edit it)"
            if has_sweep
            else "",
        )
        self.run_sweep_action.setEnabled(runnable and has_sweep)
        self._sweep_button_slot.setVisible(has_sweep)
        self.sweep_button.setEnabled(runnable and has_sweep)
        self.sweep_button.setText(
            f"▶  Run sweep ({trials} trials)" if has_sweep else "▶  Run sweep"
        )
        self.run_sweep_action.setText(
            f"Run s&weep ({trials} trials)" if has_sweep else "Run s&weep"
        )
        if not has_sweep:
            self.run_button.setText("▶  Run")
            self.run_sweep_action.setToolTip("The plan has no sweep: add one with Run → Sweep…")
            return
        self.run_button.setText("▶  Run once")
        if runnable:
            self.run_button.setToolTip(
                "One run of the plan as it is, its sweep section left out (Ctrl+R)"
            )
            self.sweep_button.setToolTip(
                f"Start the sweep: up to {trials} trials, each a run of the plan with "
                "settings from the sweep's space (Ctrl+Shift+R)"
            )
        else:
            self.sweep_button.setToolTip(
                f"Fix the {problems} listed under Problems first"
                if problems
                else "Add stages from the palette first"
            )
        self.run_sweep_action.setToolTip(self.sweep_button.toolTip())

    def _ran(self, store, run_id: str) -> None:
        """The plan now belongs to the run's experiment: running it again unchanged adds a
        run there, an edited one becomes its child. An untitled plan is kept by the run, so
        closing the window does not ask to save it."""
        from engine.store import queries

        self.experiment_id = queries.get_run(store, run_id).experiment_id
        if self.doc.path is None:
            self.doc.mark_recorded()

    def _on_tab_changed(self, index: int) -> None:
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
        """Save the plan into a new run of its experiment (and to its file, if it has one),
        start the run's engine process and watch it. The engine is detached: closing the
        window never stops training."""
        if not (self.doc.is_valid and self.doc.stages):
            return
        if self.doc.path is not None and self.doc.is_dirty and not self.files.save():
            return
        from engine.launch.runs import checked_plan, processes, start_run

        store = self.store()
        plan_text = (
            self.doc.to_yaml()
            if self.doc.path is None
            else self.doc.path.read_text(encoding="utf-8")
        )
        gpus = self.gpu_picker.selection()
        plan_dir = str(self.doc.plan_dir)
        # Several GPUs train one global batch split among them: refuse before recording.
        _, split = checked_plan(plan_text, plan_dir, processes(gpus, 1))
        if split:
            box = QMessageBox(self)
            box.setObjectName("batchSplitProblem")
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle("The batch cannot be shared among the GPUs")
            box.setText(
                f"Nothing was started: on GPUs {gpus}, {len(split)} stage(s) cannot split "
                "their batch evenly. Change the batch size or pick other GPUs."
            )
            box.setInformativeText("\n".join(split))
            box.exec()
            return
        live = live_run_of(store, plan_text, plan_dir)
        if live is not None:
            answer = ask_about_live_run(self, live)
            if answer == "watch":
                self.runs.open_run(live.id)
                return
            if answer != "another":
                return
        name = str(self.doc.data.get("name") or "plan")
        if self.clone_of is not None:
            from engine.store import queries

            self.experiment_id = queries.clone_experiment(store, self.clone_of, name=name)
            self.clone_of = None
        started = start_run(
            self.workspace,
            store,
            plan_text=plan_text,
            plan_dir=plan_dir,
            name=name,
            gpus=gpus,
            opened_from=self.experiment_id,
        )
        if started.problems:  # the plan changed on disk since the check
            self.statusBar().showMessage("Nothing was started: " + " ".join(started.problems))
            return
        run_id = started.run_id
        self.last_run_id = run_id
        self._ran(store, run_id)
        self.runs.start(run_id)
        self.statusBar().showMessage(
            f"Run {run_id} started on {self.gpu_picker.selection()}; closing the window does not stop it"
        )

    def run_sweep(self) -> None:
        """Record the plan's sweep in its own experiment ('<plan> sweep', as `stagelab
        sweep` does), start the sweep process detached (closing the window never stops
        it) and follow it in the Sweep view."""
        sweep = self.doc.data.get("sweep")
        if not (self.doc.is_valid and self.doc.stages and isinstance(sweep, dict)):
            return
        if self.doc.path is not None and self.doc.is_dirty and not self.files.save():
            return
        from engine.launch.sweeps import record_sweep, start_sweep_process
        from engine.spec import load_plan_text

        store = self.store()
        plan_text = (
            self.doc.to_yaml()
            if self.doc.path is None
            else self.doc.path.read_text(encoding="utf-8")
        )
        plan_dir = str(self.doc.plan_dir)
        live = live_sweep_of(store, plan_text, plan_dir)
        if live is not None:
            self.runs.open_sweep(live.id)
            self.statusBar().showMessage(
                f"Sweep {live.id} of this plan is already {live.status}: shown under Sweeps"
            )
            return
        plan = load_plan_text(plan_text)
        name = f"{self.doc.data.get('name') or 'plan'} sweep"
        gpus = self.gpu_picker.selection()
        sweep_id = record_sweep(
            store,
            name=name,
            plan_text=plan_text,
            plan_dir=plan_dir,
            spec=plan.sweep.model_dump(mode="json"),
            gpus=gpus,
        )
        process = start_sweep_process(self.workspace, sweep_id)
        self.last_sweep_id = sweep_id
        self.runs.start_sweep(sweep_id, process)
        self.statusBar().showMessage(
            f"Sweep {sweep_id} started on {gpus}; closing the window does not stop it"
        )

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
        self.playground.close_workers()
        event.accept()


STARTING_S = 120  # a queued run this young is an engine still starting, not a dead one


def live_run_of(store, plan_text: str, plan_dir: str):
    """The newest run of exactly this plan that is training, paused, stopping or still
    starting (recorded but not yet claimed by its engine), or None."""
    import time

    from engine.store import queries

    now_ms = time.time() * 1000
    for run in reversed(queries.list_runs(store)):
        if run.plan_text != plan_text or run.plan_dir != plan_dir:
            continue
        starting = run.stored_status == "queued" and now_ms - run.created_ms < STARTING_S * 1000
        if run.status in ("running", "paused", "stopping") or starting:
            return run
    return None


def sweep_trials(sweep: dict) -> int:
    """The sweep section's budget of trials (10 when it names none, as the engine)."""
    budget = sweep.get("budget")
    trials = budget.get("trials") if isinstance(budget, dict) else None
    return trials if isinstance(trials, int) and not isinstance(trials, bool) else 10


def live_sweep_of(store, plan_text: str, plan_dir: str):
    """The newest sweep of exactly this plan that runs or is still starting, or None."""
    import time

    from engine.store import queries

    now_ms = time.time() * 1000
    plans = {e.id: (e.plan_text, e.plan_dir) for e in queries.list_experiments(store)}
    for sweep in reversed(queries.list_sweeps(store)):
        if plans.get(sweep.experiment_id) != (plan_text, plan_dir):
            continue
        starting = (
            sweep.stored_status == "running"
            and sweep.pid is None
            and now_ms - sweep.created_ms < STARTING_S * 1000
        )
        if sweep.status == "running" or starting:
            return sweep
    return None


def ask_about_live_run(parent: QWidget, run) -> str:
    """'watch', 'another' or 'cancel': what to do when this plan is already running."""
    box = QMessageBox(parent)
    box.setObjectName("liveRunQuestion")
    box.setWindowTitle("This plan is running")
    box.setIcon(QMessageBox.Icon.Question)
    status = "starting" if run.stored_status == "queued" else run.status
    box.setText(f"Run {run.id} of this plan is {status}.")
    box.setInformativeText(
        "Watch it in the monitor, or start another run of the same plan beside it "
        "(both train at once and share the machine)."
    )
    watch = box.addButton("Watch the running one", QMessageBox.ButtonRole.AcceptRole)
    watch.setObjectName("watchRunning")
    another = box.addButton("Start another run", QMessageBox.ButtonRole.DestructiveRole)
    another.setObjectName("startAnother")
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(watch)
    box.exec()
    clicked = box.clickedButton()
    return "watch" if clicked is watch else "another" if clicked is another else "cancel"
