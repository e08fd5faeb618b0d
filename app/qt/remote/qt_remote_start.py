"""Run on the target chosen in the Devices dock: `start_remote_run` (engine/remote/runs.py,
what `stagelab run --target` calls) on a worker thread, since it makes the target ready and
sends the plan's files (a progress bar for the bytes); the monitor then follows the run
through its mirror. On a Slurm target the batch script is shown first, with Submit and
Cancel. Nothing is recorded when the target cannot take the run: the one sentence why is
shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from app.qt.remote.qt_task import QtTask


def progress_dialog(parent: QWidget, title: str, text: str) -> QProgressDialog:
    """A window-modal progress bar without Cancel (the work ends by itself)."""
    bar = QProgressDialog(text, "", 0, 0, parent)
    bar.setObjectName("remoteProgress")
    bar.setWindowTitle(title)
    bar.setCancelButton(None)
    bar.setWindowModality(Qt.WindowModality.WindowModal)
    bar.setMinimumDuration(0)
    bar.setMinimumWidth(460)
    bar.setAutoClose(False)
    bar.setAutoReset(False)
    return bar


def show_bytes(bar: QProgressDialog, done: int, total: int) -> None:
    """Bytes on a bar whose range is int (kilobytes keep large files in range)."""
    if total <= 0:
        return
    bar.setMaximum(max(1, total // 1024))
    bar.setValue(min(done, total) // 1024)


def start_on_target(
    window: Any,
    target_name: str,
    *,
    plan_text: str,
    plan_dir: str,
    name: str,
    gpus: str,
    started: Callable[[str], None],
) -> TargetRun | None:
    """Start a run of the plan on a target; `started(run_id)` once it is recorded and
    started there (submitted, on Slurm). Returns the start (tests wait on it), None when
    refused at once."""
    from engine.remote.targets import TargetError, get_target
    from engine.store import queries

    try:
        target = get_target(window.store(), target_name)
    except (queries.NotFound, TargetError) as exc:
        window.statusBar().showMessage(f"Nothing was started: {exc}")
        return None
    run = TargetRun(window, target, plan_text, plan_dir, name, gpus, started)
    run.start()
    return run


class TargetRun:
    """One Run on a target. A Slurm target first: the batch script, written on a worker
    thread (`slurm_runs.dry_run`, what `--dry-run` prints), shown with Submit and Cancel
    before anything is sent. Then `start_remote_run` on a worker thread with a progress bar
    for the files. `busy` until the run is started, refused or cancelled; `task` is the
    worker of the moment, `script_view` the script shown."""

    def __init__(self, window, target, plan_text, plan_dir, name, gpus, started):  # noqa: ANN001
        self.window, self.target, self.name, self.gpus = window, target, name, gpus
        self.plan_text, self.plan_dir, self.started = plan_text, plan_dir, started
        self.busy = False
        self.task: QtTask | None = None
        self.script_view = None
        self.bar: QProgressDialog | None = None

    def start(self) -> None:
        from engine.remote.slurm_runs import is_slurm

        self.busy = True
        if is_slurm(self.target):
            self._write_script()
        else:
            self._send()

    def wait(self, timeout: float | None = None) -> None:
        if self.task is not None:
            self.task.wait(timeout)

    def _run_task(self, work, title: str, text: str, done: Callable[[Any], None]) -> None:
        from engine.remote.setup import SetupError
        from engine.remote.shell import ShellError
        from engine.remote.targets import TargetError

        self.bar = bar = progress_dialog(self.window, title, text)
        task = QtTask(work, (ShellError, SetupError, TargetError), self.window)
        task.said.connect(lambda line: bar.setLabelText(line[:1].upper() + line[1:] + "…"))
        task.progressed.connect(lambda done, total: show_bytes(bar, done, total))

        def close_bar() -> None:
            bar.close()
            bar.deleteLater()

        def failed(error: str) -> None:
            close_bar()
            self._refused(error)

        task.succeeded.connect(lambda result: (close_bar(), done(result)))
        task.failed.connect(failed)
        self.task = task
        bar.show()
        task.start()

    def _write_script(self) -> None:
        from engine.remote.slurm_runs import dry_run

        workspace, target = self.window.workspace, self.target

        def work(say, progress):
            return dry_run(
                workspace, target, plan_text=self.plan_text, plan_dir=self.plan_dir,
                name=self.name,
            )  # fmt: skip

        text = f"Writing the batch script for {target.where}…"
        self._run_task(work, "Run on a Slurm target", text, self._ask_submit)

    def _ask_submit(self, written: tuple[str | None, tuple[str, ...]]) -> None:
        """The script, with Submit (send the files, record, sbatch) and Cancel (nothing)."""
        from app.qt.monitor.qt_remote_parts import QtScriptView
        from engine.remote.slurm_runs import DRY_RUN_ID

        script, problems = written
        if problems or not script:
            self._refused(" ".join(problems) or "no batch script was written")
            return
        what = f"plan '{self.name}' on target '{self.target.name}' ({self.target.url})"
        view = QtScriptView(DRY_RUN_ID, "", script, self.window, submit=what)
        view.accepted.connect(self._send)
        view.rejected.connect(self._cancelled)
        view.finished.connect(view.deleteLater)
        self.script_view = view
        size = self.window.size()
        view.resize(min(820, size.width() - 60), min(600, size.height() - 60))
        view.open()  # window-modal; the window's event loop goes on

    def _cancelled(self) -> None:
        self.script_view, self.busy = None, False
        self.window.statusBar().showMessage(
            f"Nothing was submitted to '{self.target.name}': nothing sent, nothing recorded"
        )

    def _send(self) -> None:
        from engine.remote.runs import start_remote_run
        from engine.store.db import Store

        self.script_view = None
        workspace, target = self.window.workspace, self.target

        def work(say, progress):
            store = Store.open(workspace.db_path)  # a connection of the worker's own
            return start_remote_run(
                workspace, store, target, plan_text=self.plan_text, plan_dir=self.plan_dir,
                name=self.name, gpus=self.gpus, progress=progress, say=say,
            )  # fmt: skip

        self._run_task(work, "Run on a target", f"Connecting to {target.where}…", self._started)

    def _started(self, result) -> None:  # noqa: ANN001
        if result.problems or not result.run_id:
            self._refused(" ".join(result.problems))
            return
        self.busy = False
        self.started(result.run_id)
        how = "submitted to Slurm on" if self.target.kind != "ssh" else "started on"
        self.window.statusBar().showMessage(
            f"Run {result.run_id} {how} {self.target.where} ({self.target.name}); "
            f"{result.sent_bytes / 2**20:.1f} MiB of files sent; closing the window does not stop it"
        )

    def _refused(self, why: str) -> None:
        self.busy = False
        say_refused(self.window, self.target.name, why)


def say_refused(window: Any, target: str, why: str) -> None:
    """Nothing was started on the target: one sentence in a box and the status bar."""
    window.statusBar().showMessage(f"Nothing was started on '{target}': {why}", 15000)
    box = QMessageBox(window)
    box.setObjectName("remoteRunRefused")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Not started")
    box.setText(f"Nothing was started on target '{target}'.")
    box.setInformativeText(why)
    box.open()  # not exec: the window goes on (tests read it)
