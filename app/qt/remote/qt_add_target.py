"""Targets… → Add: a target's name and URL with what `stagelab target add` takes (work
folder, Python, SSH key and options; Slurm settings for a slurm:// or slurm+ssh:// URL).
A target that cannot be used is one sentence under the form; the dialog stays open."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.qt.remote.qt_targets_dialog import ERROR_STYLE
from app.qt.remote.qt_task import sentence

# (key in the target's slurm options, label, kind): the same settings as the CLI's flags.
SLURM_FIELDS = (
    ("partition", "Partition", str),
    ("nodes", "Nodes", int),
    ("gpus_per_node", "GPUs per node", int),
    ("cpus_per_task", "CPUs per task", int),
    ("time", "Time limit", str),
    ("account", "Account", str),
    ("qos", "QOS", str),
)


class QtAddTargetDialog(QDialog):
    """The form; `added` is the new target's name once accepted."""

    def __init__(self, store_getter, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("addTargetDialog")
        self.setWindowTitle("Add target")
        self.store = store_getter
        self.added: str | None = None
        self.name_edit = self._line("targetName", "gpu-box")
        self.url_edit = self._line("targetUrl", "ssh://me@gpu-box, slurm://, slurm+ssh://me@login")
        self.url_edit.textChanged.connect(self._url_changed)
        self.workdir_edit = self._line("targetWorkdir", "~/.stagelab")
        self.python_edit = self._line("targetPython", "python3")
        self.identity_edit = self._line("targetIdentity", "ssh's own keys and agent")
        self.options_edit = self._line("targetSshOptions", "ProxyJump=gateway, Port=2222")
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("URL", self.url_edit)
        form.addRow("Work folder", self.workdir_edit)
        form.addRow("Python", self.python_edit)
        form.addRow("SSH key file", self.identity_edit)
        form.addRow("SSH options", self.options_edit)

        self.slurm_box = QGroupBox("Slurm (slurm:// and slurm+ssh:// targets)")
        self.slurm_box.setObjectName("slurmSettings")
        slurm_form = QFormLayout(self.slurm_box)
        self.slurm_edits: dict[str, QLineEdit | QSpinBox] = {}
        for key, label, kind in SLURM_FIELDS:
            if kind is int:
                edit = QSpinBox()
                edit.setRange(0, 4096)
                edit.setSpecialValueText("—")  # 0: Slurm's default
            else:
                edit = self._line(f"slurm_{key}", "Slurm's default")
            edit.setObjectName(f"slurm_{key}")
            edit.setAccessibleName(label)
            self.slurm_edits[key] = edit
            slurm_form.addRow(label, edit)
        self.sbatch_edit = QPlainTextEdit()
        self.sbatch_edit.setObjectName("slurm_sbatch")
        self.sbatch_edit.setAccessibleName("Extra #SBATCH lines")
        self.sbatch_edit.setPlaceholderText("--constraint=a100\n--mem=64G")
        self.sbatch_edit.setMaximumHeight(60)
        slurm_form.addRow("Extra #SBATCH lines", self.sbatch_edit)

        self.problem = QLabel()
        self.problem.setObjectName("addTargetProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.slurm_box)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self._url_changed("")

    def _line(self, name: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setObjectName(name)
        edit.setPlaceholderText(placeholder)
        return edit

    def _url_changed(self, text: str) -> None:
        self.slurm_box.setEnabled(text.strip().lower().startswith("slurm"))

    def options(self) -> dict[str, Any]:
        """The target's options as `stagelab target add` stores them."""
        slurm: dict[str, Any] = {}
        if self.slurm_box.isEnabled():
            for key, edit in self.slurm_edits.items():
                value = edit.value() if isinstance(edit, QSpinBox) else edit.text().strip()
                if value:
                    slurm[key] = value
            lines = [ln.strip() for ln in self.sbatch_edit.toPlainText().splitlines()]
            if any(lines):
                slurm["sbatch"] = [ln for ln in lines if ln]
        ssh_options = [o.strip() for o in self.options_edit.text().split(",") if o.strip()]
        return {
            "workdir": self.workdir_edit.text().strip() or None,
            "python": self.python_edit.text().strip() or None,
            "identity": self.identity_edit.text().strip() or None,
            "ssh_options": ssh_options,
            "slurm": slurm,
        }

    def accept(self) -> None:
        """Store the target, or say in one sentence why it cannot be (the form stays)."""
        from engine.remote.targets import TargetError, add_target, make_target
        from engine.store import queries

        name, url = self.name_edit.text().strip(), self.url_edit.text().strip()
        try:
            if not url:
                raise TargetError("write the target's URL, such as ssh://me@gpu-box")
            add_target(self.store(), make_target(name, url, self.options()))
        except (TargetError, queries.StoreError) as exc:
            self.problem.setText(sentence(exc))
            self.problem.show()
            return
        self.added = name
        super().accept()
