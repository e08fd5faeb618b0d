"""Fetch outputs (the browser's context menu, the monitor's Export menu): a remote run's
finished stage outputs brought home by engine/remote/fetch.py on a worker thread, with a
progress bar for the bytes; the one sentence why when they cannot be."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMessageBox

from app.qt.remote.qt_remote_start import progress_dialog, show_bytes
from app.qt.remote.qt_task import QtTask


def can_fetch(run: Any) -> bool:
    """Whether a run's outputs are on a target (a run of this machine has them here)."""
    from engine.remote.fetch import is_remote

    return run is not None and is_remote(run)


def fetch_in_window(window: Any, run_id: str, stage: str | None = None) -> QtTask:
    """Fetch a run's outputs (or one stage's) with a progress bar; says the outcome in the
    status bar, and in a box when it failed. Returns the task (tests wait on it)."""
    from engine.remote.fetch import FetchError, fetch_outputs
    from engine.remote.shell import ShellError
    from engine.store import queries
    from engine.store.db import Store

    workspace = window.workspace

    def work(say, progress):
        store = Store.open(workspace.db_path)  # a connection of the worker's own
        return fetch_outputs(workspace, store, run_id, stage, progress=progress, say=say)

    what = f"stage '{stage}' of run {run_id}" if stage else f"the outputs of run {run_id}"
    bar = progress_dialog(window, "Fetch outputs", f"Listing {what} on its target…")
    task = QtTask(work, (FetchError, ShellError, queries.StoreError), window)
    task.said.connect(bar.setLabelText)
    task.progressed.connect(lambda done, total: show_bytes(bar, done, total))

    def done(fetched) -> None:
        bar.close()
        bar.deleteLater()
        sent = sum(f.sent for f in fetched) / 2**20
        names = ", ".join(f.stage for f in fetched)
        window.statusBar().showMessage(
            f"Fetched {names} of run {run_id} ({sent:.1f} MiB sent, sha256 checked): "
            "the outputs are here now",
            15000,
        )

    def failed(error: str) -> None:
        bar.close()
        bar.deleteLater()
        window.statusBar().showMessage(f"Nothing was fetched: {error}", 15000)
        box = QMessageBox(window)
        box.setObjectName("fetchFailed")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Fetch outputs")
        box.setText(f"Nothing was fetched of run {run_id}.")
        box.setInformativeText(error)
        box.open()

    task.succeeded.connect(done)
    task.failed.connect(failed)
    bar.show()
    task.start()
    return task
