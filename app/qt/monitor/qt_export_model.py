"""Export model… (the monitor's Export menu): one of the run's finished outputs to
safetensors, ONNX or GGUF in a folder, with a progress bar. The export runs as `stagelab
export` in a process of its own (the window never loads torch); its parity figure, or
its one-sentence refusal, shows in the dialog when it ends."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QProcess, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.model.model_export import FORMATS, default_folder, export_command, outcome, progress
from app.model.playground import OutputChoice


class QtExportModelDialog(QDialog):
    """Pick an output, a format and a folder; Export; read the figure."""

    def __init__(
        self, choices: list[OutputChoice], workspace: Path | None, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setObjectName("exportModelDialog")
        self.setWindowTitle("Export model")
        self.workspace = workspace
        self.choices = [c for c in choices if c.loadable]
        self.process: QProcess | None = None
        self._out, self._err = "", ""
        self.output_pick = QComboBox()
        self.output_pick.setObjectName("exportOutput")
        self.output_pick.setAccessibleName("Output")
        for choice in self.choices:
            self.output_pick.addItem(choice.label)
        self.format_pick = QComboBox()
        self.format_pick.setObjectName("exportFormat")
        self.format_pick.setAccessibleName("Format")
        for key, words in FORMATS.items():
            self.format_pick.addItem(words, key)
        self.folder_edit = QLineEdit()
        self.folder_edit.setObjectName("exportFolder")
        self.folder_edit.setAccessibleName("Folder")
        self.choose_button = QPushButton("Choose…")
        self.choose_button.setObjectName("exportChoose")
        self.choose_button.clicked.connect(self.choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.choose_button)
        self.merge_box = QCheckBox("Merge LoRA adapters into their base (one whole model)")
        self.merge_box.setObjectName("exportMerge")
        self.merge_box.setChecked(True)
        self.merge_box.setToolTip(
            "safetensors: one whole model instead of the adapters and the base they need; "
            "ONNX and GGUF always merge them"
        )
        form = QFormLayout()
        form.addRow("Output", self.output_pick)
        form.addRow("Format", self.format_pick)
        form.addRow("Folder", folder_row)
        form.addRow("", self.merge_box)
        self.bar = QProgressBar()
        self.bar.setObjectName("exportProgress")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.step_label = QLabel("")
        self.step_label.setObjectName("exportStep")
        self.result_label = QLabel("")
        self.result_label.setObjectName("exportResult")
        self.result_label.setWordWrap(True)
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("exportStart")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("exportStop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.close_button = QPushButton("Close")
        self.close_button.setObjectName("exportClose")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.export_button, self.stop_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addWidget(self.step_label)
        layout.addWidget(self.result_label, 1)
        layout.addLayout(buttons)
        self.output_pick.currentIndexChanged.connect(self._suggest_folder)
        self.format_pick.currentIndexChanged.connect(self._suggest_folder)
        self.export_button.setEnabled(bool(self.choices))
        if not self.choices:
            self.result_label.setText("This run has no finished output to export yet.")
        self._suggest_folder()
        self.resize(640, 300)

    def choice(self) -> OutputChoice | None:
        index = self.output_pick.currentIndex()
        return self.choices[index] if 0 <= index < len(self.choices) else None

    def fmt(self) -> str:
        return str(self.format_pick.currentData())

    def _suggest_folder(self) -> None:
        self.merge_box.setEnabled(self.fmt() == "safetensors")
        choice = self.choice()
        if choice is not None:
            self.folder_edit.setText(str(default_folder(self.workspace, choice, self.fmt())))

    def choose_folder(self) -> None:
        start = str(Path(self.folder_edit.text()).parent)
        picked = QFileDialog.getExistingDirectory(self, "Export into", start)
        if picked:
            self.folder_edit.setText(picked)

    def start(self) -> None:
        """Start `stagelab export` for the picked output."""
        choice = self.choice()
        if choice is None or self.process is not None:
            return
        out = Path(self.folder_edit.text().strip()).expanduser()
        program, *arguments = export_command(
            self.workspace, choice, self.fmt(), out, self.merge_box.isChecked()
        )
        self._out, self._err = "", ""
        self.bar.setRange(0, 0)  # busy until the first progress line
        self.result_label.setText("")
        self.step_label.setText("starting…")
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.readyReadStandardError.connect(self._read_errors)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._failed_to_start)
        self._set_running(True)
        self.process.start(program, arguments)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()

    def _set_running(self, running: bool) -> None:
        self.export_button.setEnabled(not running and bool(self.choices))
        self.stop_button.setEnabled(running)
        for widget in (self.output_pick, self.format_pick, self.folder_edit, self.choose_button):
            widget.setEnabled(not running)
        self.merge_box.setEnabled(not running and self.fmt() == "safetensors")

    def _read(self) -> None:
        text = bytes(self.process.readAllStandardOutput().data()).decode(errors="replace")
        self._out += text
        for line in text.splitlines():
            step = progress(line)
            if step is not None:
                done, total, what = step
                self.bar.setRange(0, total)
                self.bar.setValue(done - 1)
                self.step_label.setText(what)

    def _read_errors(self) -> None:
        self._err += bytes(self.process.readAllStandardError().data()).decode(errors="replace")

    def _finished(self, code: int, _status) -> None:
        self._read()
        self._read_errors()
        ok, said = outcome(code, self._out, self._err)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if ok else 0)
        self.step_label.setText("done" if ok else "not exported")
        self.result_label.setText(said)
        self.result_label.setProperty("ok", ok)
        self.process = None
        self._set_running(False)

    def _failed_to_start(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finished(-1, None)

    def closeEvent(self, event) -> None:  # noqa: N802 — Qt's name
        self.stop()
        if self.process is not None:
            self.process.waitForFinished(3000)
        super().closeEvent(event)
