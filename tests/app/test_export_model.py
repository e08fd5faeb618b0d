"""Export model… in the run monitor's Export menu, on the tiny trained outputs: the
dialog lists the run's outputs, Choose… picks a folder, Export runs `stagelab export` in
a process of its own and shows its figure or its refusal, Stop ends it, Close closes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from app import create_main_window
from app.model.model_export import export_command, outcome, progress, reference
from app.model.playground import OutputChoice
from tests.app.conftest import mark_saved


def open_dialog(qtbot, tiny_outputs):
    win = create_main_window(tiny_outputs.workspace)
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1400, 880)
    win.show()
    win.runs.open_run(tiny_outputs.run_id)
    monitor = win.runs.monitor
    action = monitor.export_button.menu().findChild(QAction, "exportModelAction")
    action.trigger()
    return win, monitor.export_dialog


def export_and_wait(qtbot, dialog, fmt: str, folder: Path) -> None:
    dialog.format_pick.setCurrentIndex(dialog.format_pick.findData(fmt))
    dialog.folder_edit.setText(str(folder))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.process is None, timeout=120_000)


@pytest.mark.slow
def test_export_model_dialog_exports_refuses_stops_and_closes(
    qtbot, tiny_outputs, tmp_path, monkeypatch
):
    win, dialog = open_dialog(qtbot, tiny_outputs)
    stages = [c.stage for c in dialog.choices]
    assert stages == ["sentiment", "tagger", "writer", "filler"]
    assert Path(dialog.folder_edit.text()).parent == tiny_outputs.workspace / "exports"
    # Choose…: the folder picked lands in the field.
    picked = tmp_path / "picked"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(picked))
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert dialog.folder_edit.text() == str(picked)
    # A refusal: the command's sentence, nothing written.
    export_and_wait(qtbot, dialog, "gguf", tmp_path / "refused")
    assert "GGUF export covers Llama-family" in dialog.result_label.text()
    assert dialog.step_label.text() == "not exported" and not (tmp_path / "refused").exists()
    # An export: the folder with its model card; the bar full.
    export_and_wait(qtbot, dialog, "safetensors", tmp_path / "st")
    assert dialog.result_label.text().startswith("exported"), dialog.result_label.text()
    assert (tmp_path / "st" / "model.safetensors").exists()
    assert "stage `sentiment`" in (tmp_path / "st" / "README.md").read_text()
    assert dialog.bar.value() == dialog.bar.maximum() == 1
    # Stop: an export under way ends, and the dialog says so.
    dialog.format_pick.setCurrentIndex(dialog.format_pick.findData("onnx"))
    dialog.folder_edit.setText(str(tmp_path / "stopped"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.stop_button.isEnabled() and not dialog.export_button.isEnabled()
    qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.process is None, timeout=30_000)
    assert dialog.step_label.text() == "not exported" and dialog.export_button.isEnabled()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible())


def test_the_dialogs_words_from_the_commands_output():
    ok, said = outcome(
        0,
        "[1/3] checked\nONNX Runtime against PyTorch on 64 eval rows: max |logit difference| "
        "7.45e-08 (tolerance 1e-04, fp32)\nexported r:s as onnx to /o\n",
        "",
    )
    assert ok and said.splitlines()[0].endswith("(tolerance 1e-04, fp32)")
    failed = outcome(1, "", "noise\nstagelab export: parity check failed: max |logit difference| 1")
    assert failed == (False, "parity check failed: max |logit difference| 1")
    assert outcome(-1, "", "")[1] == "the export stopped (exit code -1)"
    assert progress("[2/4] member 'a'") == (2, 4, "member 'a'") and progress("other") is None
    choice = OutputChoice("/f", "x", "r1", "pair", "calm")
    assert reference(choice) == "r1:pair:calm"
    cmd = export_command(Path("/ws"), choice, "onnx", Path("/o"), True)
    assert cmd[1:] == ["-m", "engine.cli", "--workspace", "/ws", "export", "r1:pair:calm"] + [
        "--format", "onnx", "/o", "--merge-adapters"
    ]  # fmt: skip
