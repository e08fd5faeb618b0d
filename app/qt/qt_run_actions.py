"""The window's runs side: the Experiments, Monitor and Compare tabs and what their buttons
do (start, open, resume, clone, compare, delete). The tabs' widgets are made when first
shown, so start-up does not pay for pyqtgraph or the database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QTabWidget, QWidget

if TYPE_CHECKING:
    from app.qt.qt_main_window import MainWindow

PLAN_TAB, EXPERIMENTS_TAB, MONITOR_TAB, COMPARE_TAB, SWEEPS_TAB = range(5)


class RunActions:
    """Owns the runs tabs of a main window."""

    def __init__(self, window: MainWindow, tabs: QTabWidget):
        self.window, self.tabs = window, tabs
        self._browser = self._monitor = self._compare = self._sweeps = None
        self._notifier = None
        tabs.addTab(QLabel("Loading experiments…"), "Experiments")
        tabs.addTab(QLabel("Loading the monitor…"), "Monitor")
        tabs.addTab(
            QLabel("Select two or more runs under Experiments and press Compare."), "Compare"
        )
        tabs.addTab(QLabel("Loading sweeps…"), "Sweeps")
        tabs.currentChanged.connect(self._tab_shown)

    # -- the tabs' widgets, made on first use -------------------------------------------------

    def swap_tab(self, index: int, widget: QWidget, title: str) -> QWidget:
        """Put a page made on first use in place of its placeholder tab."""
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, widget, title)
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(False)
        self._size_by_current_page()
        return widget

    @property
    def notifier(self):
        """Says when a watched run ends; made with the monitor, which tells it (its module
        and the tray icon class are no part of the start)."""
        if self._notifier is None:
            from app.qt.qt_notify import WindowNotifier

            self._notifier = WindowNotifier(self.window)
        return self._notifier

    @property
    def browser(self):
        if self._browser is None:
            from app.qt.browser.qt_experiment_browser import QtExperimentBrowser

            browser = QtExperimentBrowser(self.window.store)
            browser.openRun.connect(self.open_run)
            browser.resumeRun.connect(self.resume_run)
            browser.cloneExperiment.connect(self.clone_experiment)
            browser.compareRuns.connect(self.compare)
            browser.deleteExperiments.connect(self.delete_experiments)
            browser.fetchOutputs.connect(self.fetch_outputs)
            self._browser = self.swap_tab(EXPERIMENTS_TAB, browser, "Experiments")
        return self._browser

    @property
    def monitor(self):
        if self._monitor is None:
            from app.qt.monitor.qt_run_monitor import QtRunMonitor

            monitor = QtRunMonitor(self.window.store)
            monitor.resumeRequested.connect(self.resume_run)
            monitor.statusChanged.connect(self._status_changed)
            monitor.statusChanged.connect(self.notifier.status_changed)
            monitor.fetchRequested.connect(self.fetch_outputs)
            self._monitor = self.swap_tab(MONITOR_TAB, monitor, "Monitor")
        return self._monitor

    @property
    def compare_view(self):
        if self._compare is None:
            from app.qt.compare.qt_compare import QtCompareView

            self._compare = self.swap_tab(COMPARE_TAB, QtCompareView(self.window.store), "Compare")
        return self._compare

    @property
    def sweep_view(self):
        if self._sweeps is None:
            from app.model.sweep_view import SweepViewModel
            from app.qt.sweep.qt_sweep_view import QtSweepView

            view = QtSweepView(SweepViewModel(self.window.store))
            view.openPlan.connect(self.open_plan)
            view.compareRuns.connect(self.compare)
            view.openRun.connect(self.open_run)
            view.stopRequested.connect(self.stop_sweep)
            view.resumeRequested.connect(self.resume_sweep)
            self._sweeps = self.swap_tab(SWEEPS_TAB, view, "Sweeps")
        return self._sweeps

    def open_plan(self, text: str, plan_dir: str, name: str) -> None:
        """A plan (a sweep trial's) opened in the editor as a new, unsaved plan."""
        from app.model.plan_document import PlanDocument

        if not self.window.files.maybe_save():
            return
        self.window.set_document(PlanDocument.from_text(text, plan_dir, name=name))
        self.show_tab(PLAN_TAB)
        self.window.statusBar().showMessage(f"Opened the plan of {name}: change it and press Run")

    def _tab_shown(self, index: int) -> None:
        make = {
            EXPERIMENTS_TAB: lambda: self.browser,
            MONITOR_TAB: lambda: self.monitor,
            COMPARE_TAB: lambda: self.compare_view,
            SWEEPS_TAB: lambda: self.sweep_view.reload_sweeps(),
        }.get(index)
        if make is not None:
            make()
        self._size_by_current_page()
        self.window.show_plan_docks(index == PLAN_TAB)

    def _size_by_current_page(self) -> None:
        # A tab widget is as wide as its widest page, shown or not: once the monitor had
        # been made, the editor (with its docks) could not be narrower than 1505 px. Pages
        # not shown ignore their size, so only the shown one sets the window's minimum.
        current = self.tabs.currentIndex()
        for i in range(self.tabs.count()):
            policy = QSizePolicy.Policy.Preferred if i == current else QSizePolicy.Policy.Ignored
            self.tabs.widget(i).setSizePolicy(policy, policy)
        self.tabs.updateGeometry()

    def show_tab(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)
        self._tab_shown(index)

    # -- actions ----------------------------------------------------------------------------

    def start(self, run_id: str) -> None:
        """A run was recorded and its engine started: watch it."""
        self.open_run(run_id)

    def open_run(self, run_id: str) -> None:
        self.monitor.open_run(run_id)
        self.show_tab(MONITOR_TAB)

    def resume_run(self, run_id: str) -> None:
        """Continue a stopped, interrupted or failed run in a new engine (same run)."""
        from engine.launch.runs import start_engine
        from engine.store import queries
        from engine.store.status import RESUMABLE

        store = self.window.store()
        run = queries.get_run(store, run_id)
        if run.status not in RESUMABLE:
            QMessageBox.information(
                self.window,
                "Resume",
                f"Run {run_id} is {run.status}; only an interrupted, "
                "stopped or failed run can be resumed.",
            )
            return
        if run.target is not None:  # continued there, off the GUI thread (ssh)
            from app.qt.remote.qt_resume import resume_in_window

            claims = run.resume_count
            self.resume_task = resume_in_window(
                self.window, run_id, lambda rid: self._follow_resumed(rid, claims)
            )
            return
        start_engine(self.window.workspace, run_id, resume=True, detach=True)
        self._follow_resumed(run_id, run.resume_count)

    def _follow_resumed(self, run_id: str, claims_before: int) -> None:
        if self.monitor.run is None or self.monitor.run.run_id != run_id:
            self.monitor.open_run(run_id)
        self.monitor.resumed(claims_before)
        self.show_tab(MONITOR_TAB)
        self.window.statusBar().showMessage(f"Run {run_id} resumes from its last checkpoint")

    def fetch_outputs(self, run_id: str) -> None:
        """Bring a remote run's finished stage outputs home (app/qt/remote/qt_fetch.py)."""
        from app.qt.remote.qt_fetch import fetch_in_window

        self.fetch_task = fetch_in_window(self.window, run_id)

    def start_sweep(self, sweep_id: str, process=None) -> None:
        """A sweep was recorded and its process started: follow it in the Sweep view
        (`process` tells it the sweep is still starting until the process claims it)."""
        self.open_sweep(sweep_id, process)

    def open_sweep(self, sweep_id: str, process=None) -> None:
        view = self.sweep_view
        view.reload_sweeps()
        view.open_sweep(sweep_id, process=process)
        self.show_tab(SWEEPS_TAB)

    def stop_sweep(self, sweep_id: str) -> None:
        """Stop a running sweep as Ctrl-C does: its running trials stop at a checkpoint,
        the sweep ends `stopped` and can be resumed."""
        from engine.launch.sweeps import stop_sweep

        if stop_sweep(self.window.store(), sweep_id):
            self.window.statusBar().showMessage(
                f"Sweep {sweep_id} stops: its running trials stop at a checkpoint"
            )
        else:
            self.window.statusBar().showMessage(
                f"Sweep {sweep_id} has no live process on this machine to stop", 8000
            )
        self.sweep_view.refresh_now()

    def resume_sweep(self, sweep_id: str) -> None:
        """Continue a stopped, interrupted or failed sweep in a new sweep process: stopped
        trials continue from their checkpoints, new ones start while budget is left."""
        from engine.launch.sweeps import start_sweep_process, why_not_resumable
        from engine.store import queries

        info = queries.get_sweep(self.window.store(), sweep_id)
        problem = why_not_resumable(info)
        if problem is not None:
            QMessageBox.information(
                self.window, "Resume sweep", f"{problem[0].upper()}{problem[1:]}."
            )
            return
        process = start_sweep_process(self.window.workspace, sweep_id)
        self.open_sweep(sweep_id, process)
        self.window.statusBar().showMessage(f"Sweep {sweep_id} resumes")

    def clone_experiment(self, experiment_id: str) -> None:
        """The experiment's plan opened in the editor as a clone, named '<name> (clone)';
        its experiment (parent recorded) is made when it first runs, so a clone that is
        never run leaves nothing behind."""
        from app.model.plan_document import PlanDocument
        from engine.store import queries

        if not self.window.files.maybe_save():
            return
        source = queries.get_experiment(self.window.store(), experiment_id)
        name = f"{source.name} (clone)"
        doc = PlanDocument.from_text(source.plan_text, source.plan_dir, name=name)
        self.window.set_document(doc, clone_of=experiment_id)
        self.show_tab(PLAN_TAB)
        self.window.statusBar().showMessage(
            f"Cloned '{source.name}' as '{name}': change the plan and press Run "
            "(the new experiment is recorded when it first runs)"
        )

    def compare(self, run_ids: list[str]) -> None:
        self.compare_view.compare(run_ids)
        self.show_tab(COMPARE_TAB)

    def delete_experiments(self, experiment_ids: list[str]) -> None:
        """Delete experiments, their runs and the runs' folders, after asking."""
        from engine.store import queries
        from engine.store.status import LIVE

        store = self.window.store()
        experiments = [queries.get_experiment(store, e) for e in experiment_ids]
        live = [r.id for e in experiments for r in e.runs if r.status in LIVE]
        if live:
            QMessageBox.warning(
                self.window,
                "Delete",
                f"Run {', '.join(live)} is still live. Stop it first, then delete.",
            )
            return
        runs = sum(len(e.runs) for e in experiments)
        names = ", ".join(f"'{e.name}'" for e in experiments)
        answer = QMessageBox.question(
            self.window,
            "Delete experiments",
            f"Delete {names} with {runs} run{'s' * (runs != 1)} and their files (checkpoints, "
            "stage outputs, logs)? This cannot be undone.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        from engine.store.cleanup import delete_experiment_files

        for exp in experiments:
            # Stage outputs that other runs reuse (the stage cache) are kept.
            delete_experiment_files(store, exp.id, self.window.workspace.runs_dir)
            if self._monitor is not None and self._monitor.run is not None:
                if self._monitor.info.experiment_id == exp.id:
                    self._monitor.close_run()
        self.browser.refresh()

    def _status_changed(self, run_id: str, status: str) -> None:
        from app.model.browser_rows import STARTING
        from engine.store.status import RunStatus

        self.tabs.setTabText(MONITOR_TAB, f"Monitor · {status}")
        bar = self.window.statusBar()
        if run_id in bar.currentMessage() and status not in (STARTING, RunStatus.QUEUED):
            # "Run … resumes from its last checkpoint" is old news once it trains or ends.
            bar.clearMessage()
        if self._browser is not None and self._browser.isVisible():
            self._browser.refresh()

    def close(self) -> None:
        """The window closes: stop following (runs go on)."""
        if self._monitor is not None:
            self._monitor.close_run()
        if self._sweeps is not None:
            self._sweeps.timer.stop()
