"""The Sweep view (`QtSweepView`) over `app.model.sweep_view.SweepViewModel`: a sweep
picker, Stop and Resume, the trials table (`qt_trials_table.py`), the plots
(`qt_sweep_plots.py`), "Open best trial's plan" and "Compare selected". It refreshes from
the store every second while the sweep runs."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model.sweep_view import SweepViewModel
from app.qt.sweep.qt_sweep_plots import QtSweepPlots
from app.qt.sweep.qt_trials_table import QtTrialsTable
from engine.store.status import SweepStatus

EMPTY_TEXT = (
    "No sweeps yet: add a sweep to a plan with Run → Sweep… and press Run sweep "
    "(or run `stagelab sweep PLAN`; see docs/sweeps.md)."
)


class QtSweepView(QWidget):
    """A sweep's trials and plots; `open_sweep` shows one."""

    openPlan = Signal(str, str, str)  # plan text, plan folder, name
    compareRuns = Signal(list)
    openRun = Signal(str)
    stopRequested = Signal(str)  # sweep id
    resumeRequested = Signal(str)  # sweep id

    def __init__(self, model: SweepViewModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sweepView")
        self.setAccessibleName("Sweep")
        self.model = model
        self.picker = QComboBox()
        self.picker.setObjectName("sweepPicker")
        self.picker.activated.connect(lambda i: self.open_sweep(self.picker.itemData(i)))
        self.summary = QLabel(EMPTY_TEXT)
        self.summary.setWordWrap(True)
        self.best_button = QPushButton("Open best trial's plan")
        self.best_button.clicked.connect(self._open_best)
        self.compare_button = QPushButton("Compare selected")
        self.compare_button.clicked.connect(self._compare)
        self.stop_button = QPushButton("■  Stop sweep")
        self.stop_button.setObjectName("stopSweep")
        self.stop_button.setToolTip(
            "Stop the sweep: running trials stop at a checkpoint; Resume continues them"
        )
        self.stop_button.clicked.connect(lambda: self.stopRequested.emit(self.model.sweep_id))
        self.resume_button = QPushButton("▶  Resume sweep")
        self.resume_button.setObjectName("resumeSweep")
        self.resume_button.setToolTip(
            "Continue the sweep: stopped trials from their checkpoints, then new trials "
            "while budget is left"
        )
        self.resume_button.clicked.connect(lambda: self.resumeRequested.emit(self.model.sweep_id))
        self._process = None  # the sweep process this window started, until it claims
        self._names: dict[str, str] = {}  # experiment names, for the picker
        top = QHBoxLayout()
        top.addWidget(QLabel("Sweep"))
        top.addWidget(self.picker, 1)
        top.addWidget(self.stop_button)
        top.addWidget(self.resume_button)
        top.addWidget(self.best_button)
        top.addWidget(self.compare_button)

        self.table = QtTrialsTable()
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.openRun.connect(self.openRun)
        self.plots = QtSweepPlots(model)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self.table)
        body.addWidget(self.plots)
        body.setSizes([220, 480])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(body, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._tick)
        self._update_buttons()

    # -- choosing a sweep ---------------------------------------------------------------------
    def reload_sweeps(self) -> None:
        """List the workspace's sweeps in the picker (newest first); open the newest if none
        is shown yet."""
        from engine.store import queries

        sweeps = list(reversed(queries.list_sweeps(self.model.store())))
        names = {e.id: e.name for e in queries.list_experiments(self.model.store())}
        self._names = names
        self.picker.blockSignals(True)
        self.picker.clear()
        for sw in sweeps:
            label = f"{names.get(sw.experiment_id, '?')} · {sw.id} · {sw.status} · {len(sw.trials)} trials"
            self.picker.addItem(label, sw.id)
        self.picker.blockSignals(False)
        if self.model.sweep_id is None and sweeps:
            self.open_sweep(sweeps[0].id)
        elif self.model.sweep_id is not None:
            self.picker.setCurrentIndex(max(0, self.picker.findData(self.model.sweep_id)))

    def open_sweep(self, sweep_id: str, process=None) -> None:
        """Show a sweep; follow it while it runs. `process` is its sweep process when this
        window just started it: the sweep reads 'starting' until the process claims it (or
        ends)."""
        if process is not None or sweep_id != self.model.sweep_id:
            self._process = process
        self._check_process()
        self.model.open(sweep_id)
        self.picker.setCurrentIndex(max(0, self.picker.findData(sweep_id)))
        self._redraw()
        if self.model.live:
            self.timer.start()

    def refresh_now(self) -> None:
        """Read the sweep again at once (after Stop)."""
        self._tick()
        if self.model.live and not self.timer.isActive():
            self.timer.start()

    def _check_process(self) -> None:
        """Starting while the started process lives and has not claimed the sweep."""
        process = self._process
        if process is not None and process.poll() is not None:
            self._process = process = None  # ended (and reaped)
        claimed = self.model.info is not None and self.model.info.status == SweepStatus.RUNNING
        if process is not None and claimed:
            self._process = process = None  # the record says the rest from now on
        self.model.starting = process is not None

    def _tick(self) -> None:
        self._check_process()
        changed = self.model.refresh()
        self._check_process()
        if changed:
            self._redraw()
        else:
            self.plots.draw_curves()  # the running trial's loss grows between evaluations
            self._update_buttons()
        if not self.model.live:
            self.timer.stop()
            self._redraw()

    # -- drawing ------------------------------------------------------------------------------
    def _redraw(self) -> None:
        self.summary.setText(self.model.summary())
        index = self.picker.findData(self.model.sweep_id)
        if index >= 0 and self.model.info is not None:
            name = self._names.get(self.model.info.experiment_id, "?")
            self.picker.setItemText(
                index,
                f"{name} · {self.model.sweep_id} · {self.model.status} · "
                f"{len(self.model.rows)} trials",
            )
        self.table.show_trials(self.model)
        self.plots.draw()
        self._update_buttons()

    # -- actions ------------------------------------------------------------------------------
    def selected_run_ids(self) -> list[str]:
        """Runs of the selected trials, in table order."""
        return self.table.selected_run_ids()

    def _update_buttons(self) -> None:
        self.stop_button.setEnabled(self.model.can_stop)
        self.resume_button.setEnabled(self.model.can_resume)
        self.best_button.setEnabled(self.model.best() is not None)
        self.compare_button.setEnabled(len(self.selected_run_ids()) >= 2)

    def _open_best(self) -> None:
        best = self.model.best()
        if best is not None:
            self.openPlan.emit(*self.model.plan_of(best))

    def _compare(self) -> None:
        runs = self.selected_run_ids()
        if len(runs) >= 2:
            self.compareRuns.emit(runs)
