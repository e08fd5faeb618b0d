"""Starting a run or a sweep of the plan the window shows: the checks before anything is
recorded (the batch shared among the GPUs, a run or sweep of the same plan already live),
then engine.launch, then the Monitor or Sweeps tab follows it. Engines are detached:
closing the window never stops training."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

if TYPE_CHECKING:
    from app.model.plan_document import PlanDocument
    from app.qt.qt_gpu_picker import QtGpuPicker
    from engine.store.workspace import Workspace

STARTING_S = 120  # a queued run this young is an engine still starting, not a dead one


class PlanWindow(Protocol):
    """What starting needs from the main window."""

    doc: PlanDocument
    workspace: Workspace
    gpu_picker: QtGpuPicker
    files: Any  # FileActions: save()
    runs: Any  # RunActions: open_run, start, open_sweep, start_sweep
    experiment_id: str | None  # the experiment the plan was opened from
    clone_of: str | None  # a clone's parent, until its first run records it
    last_run_id: str
    last_sweep_id: str

    def store(self) -> Any: ...

    def statusBar(self) -> QStatusBar: ...  # noqa: N802


class RunStart:
    """Run plan and Run sweep of a main window."""

    def __init__(self, window: PlanWindow):
        self.window = window

    def _plan_text(self) -> tuple[str, str] | None:
        """The plan as it will be recorded and its folder, once a plan with a file is
        saved (None when saving was refused)."""
        doc = self.window.doc
        if doc.path is not None and doc.is_dirty and not self.window.files.save():
            return None
        text = doc.to_yaml() if doc.path is None else doc.path.read_text(encoding="utf-8")
        return text, str(doc.plan_dir)

    def run_plan(self) -> None:
        """Save the plan into a new run of its experiment (and to its file, if it has one),
        start the run's engine process and watch it."""
        win, doc = self.window, self.window.doc
        if not (doc.is_valid and doc.stages):
            return
        plan = self._plan_text()
        if plan is None:
            return
        plan_text, plan_dir = plan
        from engine.launch.runs import checked_plan, processes, start_run

        store = win.store()
        gpus = win.gpu_picker.selection()
        # Several GPUs train one global batch split among them: refuse before recording.
        checked, split = checked_plan(plan_text, plan_dir, processes(gpus, 1))
        if split:
            show_batch_split_problem(win, gpus, split)
            return
        picker = getattr(win, "target_picker", None)
        on_target = picker is not None and picker.target_name()
        if checked is not None and gpus == "cpu" and not on_target:
            # What needs a GPU (kernels: liger), refused before a clone's experiment is made.
            from engine.spec.kernel_checks import device_problems

            needs_gpu = [str(p) for p in device_problems(checked, "cpu")]
            if needs_gpu:
                show_needs_gpu_problem(win, needs_gpu)
                return
        live = live_run_of(store, plan_text, plan_dir)
        if live is not None:
            answer = ask_about_live_run(win, live)
            if answer == "watch":
                win.runs.open_run(live.id)
                return
            if answer != "another":
                return
        name = str(doc.data.get("name") or "plan")
        if win.clone_of is not None:
            from engine.store import queries

            win.experiment_id = queries.clone_experiment(store, win.clone_of, name=name)
            win.clone_of = None
        if on_target:  # a target of the Devices dock
            from app.qt.remote.qt_remote_start import start_on_target

            def started(run_id: str) -> None:
                win.last_run_id = run_id
                self._ran(store, run_id)
                win.runs.start(run_id)

            self.remote_task = start_on_target(
                win, picker.target_name(), plan_text=plan_text, plan_dir=plan_dir, name=name,
                gpus=gpus, started=started,
            )  # fmt: skip
            return
        started = start_run(
            win.workspace,
            store,
            plan_text=plan_text,
            plan_dir=plan_dir,
            name=name,
            gpus=gpus,
            opened_from=win.experiment_id,
        )
        if started.problems:  # the plan changed on disk since the check
            win.statusBar().showMessage("Nothing was started: " + " ".join(started.problems))
            return
        run_id = started.run_id
        win.last_run_id = run_id
        self._ran(store, run_id)
        win.runs.start(run_id)
        win.statusBar().showMessage(
            f"Run {run_id} started on {win.gpu_picker.selection()}; closing the window does not stop it"
        )

    def _ran(self, store, run_id: str) -> None:
        """The plan now belongs to the run's experiment: running it again unchanged adds a
        run there, an edited one becomes its child. An untitled plan is kept by the run, so
        closing the window does not ask to save it."""
        from engine.store import queries

        self.window.experiment_id = queries.get_run(store, run_id).experiment_id
        if self.window.doc.path is None:
            self.window.doc.mark_recorded()

    def run_sweep(self) -> None:
        """Record the plan's sweep in its own experiment ('<plan> sweep', as `stagelab
        sweep` does), start the sweep process detached and follow it in the Sweep view."""
        win, doc = self.window, self.window.doc
        if not (doc.is_valid and doc.stages and isinstance(doc.data.get("sweep"), dict)):
            return
        plan = self._plan_text()
        if plan is None:
            return
        plan_text, plan_dir = plan
        from engine.launch.sweeps import record_sweep, start_sweep_process
        from engine.spec import load_plan_text

        store = win.store()
        live = live_sweep_of(store, plan_text, plan_dir)
        if live is not None:
            win.runs.open_sweep(live.id)
            win.statusBar().showMessage(
                f"Sweep {live.id} of this plan is already {live.status}: shown under Sweeps"
            )
            return
        spec = load_plan_text(plan_text).sweep
        gpus = win.gpu_picker.selection()
        sweep_id = record_sweep(
            store,
            name=f"{doc.data.get('name') or 'plan'} sweep",
            plan_text=plan_text,
            plan_dir=plan_dir,
            spec=spec.model_dump(mode="json"),
            gpus=gpus,
        )
        process = start_sweep_process(win.workspace, sweep_id)
        win.last_sweep_id = sweep_id
        win.runs.start_sweep(sweep_id, process)
        win.statusBar().showMessage(
            f"Sweep {sweep_id} started on {gpus}; closing the window does not stop it"
        )


def live_run_of(store, plan_text: str, plan_dir: str):
    """The newest run of exactly this plan that is training, paused, stopping or still
    starting (recorded but not yet claimed by its engine), or None."""
    from engine.store import queries
    from engine.store.status import LIVE, RunStatus

    now_ms = time.time() * 1000
    for run in reversed(queries.list_runs(store)):
        if run.plan_text != plan_text or run.plan_dir != plan_dir:
            continue
        starting = (
            run.stored_status == RunStatus.QUEUED and now_ms - run.created_ms < STARTING_S * 1000
        )
        if run.status in LIVE or starting:
            return run
    return None


def live_sweep_of(store, plan_text: str, plan_dir: str):
    """The newest sweep of exactly this plan that runs or is still starting, or None."""
    from engine.store import queries
    from engine.store.status import SweepStatus

    now_ms = time.time() * 1000
    plans = {e.id: (e.plan_text, e.plan_dir) for e in queries.list_experiments(store)}
    for sweep in reversed(queries.list_sweeps(store)):
        if plans.get(sweep.experiment_id) != (plan_text, plan_dir):
            continue
        starting = (
            sweep.stored_status == SweepStatus.RUNNING
            and sweep.pid is None
            and now_ms - sweep.created_ms < STARTING_S * 1000
        )
        if sweep.status == SweepStatus.RUNNING or starting:
            return sweep
    return None


def show_batch_split_problem(parent: QWidget, gpus: str, split: Sequence[str]) -> None:
    """Say that nothing was started: these stages cannot split their batch among `gpus`."""
    box = QMessageBox(parent)
    box.setObjectName("batchSplitProblem")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("The batch cannot be shared among the GPUs")
    box.setText(
        f"Nothing was started: on GPUs {gpus}, {len(split)} stage(s) cannot split "
        "their batch evenly. Change the batch size or pick other GPUs."
    )
    box.setInformativeText("\n".join(split))
    box.exec()


def show_needs_gpu_problem(parent: QWidget, problems: Sequence[str]) -> None:
    """Say that nothing was started: these stages need a CUDA GPU and the CPU is picked."""
    box = QMessageBox(parent)
    box.setObjectName("needsGpuProblem")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("This plan needs a GPU")
    box.setText(
        f"Nothing was started: {len(problems)} stage(s) need a CUDA GPU. Pick a GPU in the "
        "Devices dock, or set their kernels to none."
    )
    box.setInformativeText("\n".join(problems))
    box.exec()


def ask_about_live_run(parent: QWidget, run) -> str:
    """'watch', 'another' or 'cancel': what to do when this plan is already running."""
    from app.model.browser_rows import STARTING
    from engine.store.status import RunStatus

    box = QMessageBox(parent)
    box.setObjectName("liveRunQuestion")
    box.setWindowTitle("This plan is running")
    box.setIcon(QMessageBox.Icon.Question)
    status = STARTING if run.stored_status == RunStatus.QUEUED else run.status
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
