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

from engine.store.status import RunStatus


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
    """A run's batch script, read-only, with Copy."""

    def __init__(self, run_id: str, job: str, script: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("batchScript")
        self.setWindowTitle(f"Batch script of run {run_id}")
        head = QLabel(
            f"Slurm job {job}: the script sbatch was given (docs/targets.md)."
            if job
            else "The script sbatch is given (docs/targets.md)."
        )
        self.text = QPlainTextEdit(script)
        self.text.setObjectName("batchScriptText")
        self.text.setAccessibleName("Batch script")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setObjectName("copyScript")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(script))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.resize(760, 560)


class RemoteParts:
    """The monitor's remote bits: `script_button` for its header; `show_run(info)` after
    each read of the run's record."""

    def __init__(self, monitor: QWidget):
        self.monitor = monitor
        self.info = None
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
