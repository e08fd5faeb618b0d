"""What the monitor says of a run that trains on a target: where (target, host, Slurm job
and nodes) after its title, Slurm's reason beside `queued` while the job waits, and a
"Show script" button that opens the batch script the run was submitted with, read-only."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.store.status import NOT_ENDED, RunStatus


def where_text(info: Any) -> str:
    """' · on box (gpu-1)' or ' · on cluster, Slurm job 42 on node[1-2]'; '' for a run of
    this machine."""
    if info is None or not getattr(info, "target", None):
        return ""
    placement = info.placement or {}
    slurm = placement.get("slurm") or {}
    if slurm.get("job_id"):
        nodes = f" on {slurm['node_list']}" if slurm.get("node_list") else ""
        return f" · on {info.target}, Slurm job {slurm['job_id']}{nodes}"
    host = placement.get("host")
    return f" · on {info.target}" + (f" ({host})" if host else "")


def queued_reason(info: Any, status: str) -> str:
    """Slurm's reason while the run's job waits ('Resources', 'Priority' …), else ''."""
    if info is None or status != RunStatus.QUEUED:
        return ""
    slurm = (info.placement or {}).get("slurm") or {}
    reason = slurm.get("reason") or ""
    if not slurm.get("job_id"):
        return ""
    return f"Slurm: {reason}" if reason else "Slurm: waiting"


def batch_script(info: Any) -> str:
    """The recorded batch script of a Slurm run ('' for others)."""
    slurm = ((info.placement or {}).get("slurm") or {}) if info is not None else {}
    return slurm.get("script") or ""


class QtScriptView(QDialog):
    """A run's batch script, read-only, with Copy. `submit`: the script of a run not yet
    sent (Run on a Slurm target), with Submit (accept) and Cancel (reject)."""

    def __init__(
        self,
        run_id: str,
        job: str,
        script: str,
        parent: QWidget | None = None,
        *,
        submit: str = "",
    ):
        super().__init__(parent)
        self.setObjectName("submitScript" if submit else "batchScript")
        if submit:  # `submit` says what it is for: "plan 'x' on target 'y'"
            self.setWindowTitle("Submit to Slurm?")
            said = (
                f"The batch script sbatch will be given for a run of {submit}. Nothing has "
                f"been sent yet; {run_id} stands for the id the run gets when it is recorded "
                "(docs/targets.md)."
            )
        else:
            self.setWindowTitle(f"Batch script of run {run_id}")
            said = (
                f"Slurm job {job}: the script sbatch was given (docs/targets.md)."
                if job
                else "The script sbatch is given (docs/targets.md)."
            )
        head = QLabel(said)
        head.setWordWrap(True)
        self.text = QPlainTextEdit(script)
        self.text.setObjectName("batchScriptText")
        self.text.setAccessibleName("Batch script")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        box = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(box.Cancel if submit else box.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setObjectName("copyScript")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(script))
        if submit:
            self.submit_button = buttons.addButton("Submit", QDialogButtonBox.ButtonRole.AcceptRole)
            self.submit_button.setObjectName("submitButton")
            self.submit_button.setToolTip("Send the plan's files and submit this script (sbatch)")
            self.submit_button.setDefault(True)
            self.cancel_button = buttons.button(box.Cancel)
            self.cancel_button.setObjectName("cancelSubmit")
            self.cancel_button.setToolTip("Send nothing, record nothing")
            buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.resize(760, 560)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        submit = getattr(self, "submit_button", None)
        if submit is not None:  # what the view is for; Cancel is one click away
            submit.setDefault(True)
            submit.setFocus()


class RemoteParts:
    """The monitor's remote bits: `script_button` for its header; `show_run(info)` after
    each read of the run's record; Stop of a queued Slurm run (`cancel_job`)."""

    STOP_TIPS = (  # the Stop button's, by whether it cancels a waiting Slurm job
        "Stop after the current step, with a checkpoint (it can be resumed)",
        "Cancel the run's waiting Slurm job (Resume submits a new one)",
    )

    def __init__(self, monitor: QWidget):
        self.monitor = monitor
        self.info = None
        self.cancel_task = None  # the QtTask cancelling the run's Slurm job
        self.script_button = QPushButton("Show script")
        self.script_button.setObjectName("showScriptButton")
        self.script_button.setAccessibleName("Show script")
        self.script_button.setToolTip("The batch script this run was submitted to Slurm with")
        self.script_button.clicked.connect(self.show_script)
        self.script_button.hide()

    def show_run(self, info: Any) -> None:
        self.info = info
        self.script_button.setVisible(bool(batch_script(info)))

    def show_script(self) -> QtScriptView | None:
        """Open the recorded batch script, read-only (not modal: the run stays in view)."""
        script = batch_script(self.info)
        if not script:
            return None
        job = str(((self.info.placement or {}).get("slurm") or {}).get("job_id") or "")
        view = QtScriptView(self.info.id, job, script, self.monitor)
        view.show()
        return view

    def ended_unseen(self, info: Any, shown: str, live: Any) -> bool:
        """A run on a target that its record says has ended while the monitor, still showing
        it live, has not got all of its stream: the mirror's channel came and went before
        the monitor's follower reached it (a short run, a queued one that ran at once)."""
        if not info.target or info.status in NOT_ENDED or shown not in NOT_ENDED:
            return False
        from engine.store import queries

        return queries.max_seq(self.monitor.store(), info.id) > live.cursor_seen

    def can_cancel(self, status: str | None) -> bool:
        """Stop of a queued Slurm run cancels its job (none is being cancelled now)."""
        if status != RunStatus.QUEUED or (self.cancel_task and self.cancel_task.busy):
            return False
        from engine.remote.slurm_runs import job_of

        return job_of(self.info) is not None

    def cancel_job(self, done: Any) -> Any:
        """Stop a queued Slurm run as `stagelab stop` does (engine/remote/slurm_runs.py
        `stop_run`: scancel; a job whose engine already has a step is stopped after a
        checkpoint first) on a worker thread; `done()` on the GUI thread after. Returns
        the task."""
        from app.qt.remote.qt_task import QtTask
        from engine.remote.shell import ShellError
        from engine.remote.slurm import SlurmError
        from engine.store.db import Store

        info, console = self.info, self.monitor.console
        db_path = self.monitor.store().path

        def work(say, progress):
            from engine.remote.slurm_runs import stop_run
            from engine.store import queries

            store = Store.open(db_path)  # a connection of the worker's own
            state = stop_run(store, queries.get_run(store, info.id))
            return f"{state.state.lower()}" if state is not None else "gone"

        def said(line: str) -> None:
            console.append_lines(line)
            done()

        job = (info.placement.get("slurm") or {}).get("job_id")
        task = QtTask(work, (ShellError, SlurmError, LookupError), self.monitor)
        task.succeeded.connect(lambda state: said(f"Stop: Slurm job {job} {state}"))
        task.failed.connect(lambda why: said(f"Stop: Slurm job {job} was not cancelled: {why}"))
        task.ended.connect(done)
        self.cancel_task = task
        console.append_lines(f"Stop: cancelling Slurm job {job}…")
        task.start()
        done()
        return task
