"""Resume a run that trains on a target (the browser's and the monitor's Resume):
`resume_remote_run` (engine/remote/runs.py, what `stagelab resume` calls) on a worker
thread, since it connects to the target and waits there until the new engine owns the
run; the monitor then follows it through its mirror. The one sentence why when the target
cannot take it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QMessageBox

from app.qt.remote.qt_remote_start import progress_dialog
from app.qt.remote.qt_task import QtTask


class NotResumed(RuntimeError):
    """The target could not continue the run; the sentence says why."""


def resume_in_window(window: Any, run_id: str, resumed: Callable[[str], None]) -> QtTask:
    """Resume the run on its target; `resumed(run_id)` once its engine there owns it.
    Returns the task (tests wait on it)."""
    from engine.remote.runs import resume_remote_run
    from engine.store.db import Store

    workspace = window.workspace

    def work(say, progress):
        store = Store.open(workspace.db_path)  # a connection of the worker's own
        started = resume_remote_run(workspace, store, run_id, say=say)
        if started.problems:
            raise NotResumed(" ".join(started.problems))
        return started

    bar = progress_dialog(window, "Resume", f"Resuming run {run_id} on its target…")
    task = QtTask(work, (NotResumed,), window)
    task.said.connect(bar.setLabelText)

    def done(_started) -> None:
        bar.close()
        bar.deleteLater()
        resumed(run_id)

    def failed(error: str) -> None:
        bar.close()
        bar.deleteLater()
        window.statusBar().showMessage(f"Run {run_id} was not resumed: {error}", 15000)
        box = QMessageBox(window)
        box.setObjectName("resumeFailed")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Resume")
        box.setText(f"Run {run_id} was not resumed.")
        box.setInformativeText(error)
        box.open()

    task.succeeded.connect(done)
    task.failed.connect(failed)
    bar.show()
    task.start()
    return task
