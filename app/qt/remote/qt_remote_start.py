"""Run on the target chosen in the Devices dock: `start_remote_run` (engine/remote/runs.py,
what `stagelab run --target` calls) on a worker thread, since it makes the target ready and
sends the plan's files (a progress bar for the bytes); the monitor then follows the run
through its mirror. Nothing is recorded when the target cannot take the run: the one
sentence why is shown."""

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
) -> QtTask | None:
    """Start a run of the plan on a target; `started(run_id)` once it is recorded and
    started there. Returns the task (tests wait on it), None when refused at once."""
    from engine.remote.targets import TargetError, get_target
    from engine.store import queries

    try:
        target = get_target(window.store(), target_name)
    except (queries.NotFound, TargetError) as exc:
        window.statusBar().showMessage(f"Nothing was started: {exc}")
        return None
    import importlib.util

    # Slurm runs start through start_remote_run once engine/remote/slurm_runs.py is there.
    if target.kind != "ssh" and importlib.util.find_spec("engine.remote.slurm_runs") is None:
        QMessageBox.information(
            window,
            "Run on a Slurm target",
            f"Target '{target.name}' is {target.kind}: this version starts Slurm runs from "
            "the command line (stagelab run PLAN --target NAME); the window follows them.",
        )
        return None
    from engine.remote.runs import start_remote_run
    from engine.remote.setup import SetupError
    from engine.remote.shell import ShellError
    from engine.store.db import Store

    workspace = window.workspace

    def work(say, progress):
        store = Store.open(workspace.db_path)  # a connection of the worker's own
        return start_remote_run(
            workspace, store, target, plan_text=plan_text, plan_dir=plan_dir, name=name,
            gpus=gpus, progress=progress, say=say,
        )  # fmt: skip

    bar = progress_dialog(window, "Run on a target", f"Connecting to {target.where}…")
    task = QtTask(work, (ShellError, SetupError, TargetError), window)
    task.said.connect(lambda line: bar.setLabelText(line[:1].upper() + line[1:] + "…"))
    task.progressed.connect(lambda done, total: show_bytes(bar, done, total))

    def finished(result) -> None:
        bar.close()
        bar.deleteLater()
        if result.problems or not result.run_id:
            say_refused(window, target.name, " ".join(result.problems))
            return
        started(result.run_id)
        window.statusBar().showMessage(
            f"Run {result.run_id} started on {target.where} ({target.name}); "
            f"{result.sent_bytes / 2**20:.1f} MiB of files sent; closing the window does not stop it"
        )

    def failed(error: str) -> None:
        bar.close()
        bar.deleteLater()
        say_refused(window, target.name, error)

    task.succeeded.connect(finished)
    task.failed.connect(failed)
    bar.show()
    task.start()
    return task


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
