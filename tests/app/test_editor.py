"""The plan editor, driven as a person would: drops from the palette, drags to reorder,
undo/redo, inspector edits, the problems list and the Run button."""

from __future__ import annotations

import subprocess
import sys

import yaml
from PySide6.QtCore import QByteArray, QMimeData

from app.qt.editor.qt_palette import kind_mime
from app.qt.editor.qt_plan_view import STAGE_MIME
from tests.app.dnd import drop, y_between

EXPECTED = """
version: 1
name: untitled
stages:
  - name: pretrain
    kind: pretrain
    objective: masked_lm
    model: {builtin: bert-tiny}
  - name: train-2
    kind: train
    task: sequence_classification
    model: {from_stage: pretrain}
  - name: train
    kind: train
    task: sequence_classification
    model: {from_stage: pretrain}
"""


def test_dropping_palette_items_builds_the_plan(empty_window):
    view = empty_window.plan_view
    drop(view, kind_mime("pretrain"), y_between(view, 0))
    drop(view, kind_mime("train"), y_between(view, 1))
    # dropped between the two: it starts from the stage before the drop position
    drop(view, kind_mime("train"), y_between(view, 1))
    assert empty_window.doc.data == yaml.safe_load(EXPECTED)
    assert view.selected_row() == 1
    assert empty_window.inspector.index == 1


def stage_mime(row: int) -> QMimeData:
    mime = QMimeData()
    mime.setData(STAGE_MIME, QByteArray(str(row).encode()))
    return mime


def test_reorder_undo_redo_restore_the_exact_plan(window):
    doc, stack = window.doc, window.undo_stack
    original = yaml.safe_load(doc.to_yaml())
    view = window.plan_view
    drop(view, stage_mime(0), y_between(view, 3))  # first stage to the end
    moved = yaml.safe_load(doc.to_yaml())
    assert doc.stage_names() == ["topics", "sentiment", "pretrain-mlm"]
    # stage order now breaks the references, and the problems say so
    assert any("from_stage" in p.path for p in doc.problems)
    assert not window.run_button.isEnabled()
    drop(view, kind_mime("train"), y_between(view, 1))
    window.plan_view.select_row(1)
    window.duplicate_stage()
    window.delete_stage()
    edited = yaml.safe_load(doc.to_yaml())
    for _ in range(4):
        stack.undo()
    assert doc.data == original
    assert window.run_button.isEnabled()
    stack.redo()
    assert doc.data == moved
    for _ in range(3):
        stack.redo()
    assert doc.data == edited


def test_inspector_edit_changes_the_plan_and_bad_values_become_problems(window, qtbot):
    inspector = window.inspector
    window.plan_view.select_row(2)
    lr = inspector.editors[("optimizer", "lr")]
    lr.input.setText("-0.1")
    lr.input.editingFinished.emit()
    assert window.doc.value(2, ("optimizer", "lr")) == -0.1
    expected = "stages[2].optimizer.lr: must be greater than 0 (got -0.1)"
    assert expected in window.problems.messages()
    assert "must be greater than 0" in lr._problem.text() and lr._problem.isVisible()
    assert not window.run_button.isEnabled()
    assert window.bottom_tabs.tabText(1) == "Problems (1)"
    # words in a number field are kept and reported, never silently dropped
    batch = inspector.editors[("batch_size",)]
    batch.input.setText("many")
    batch.input.editingFinished.emit()
    assert window.doc.value(2, ("batch_size",)) == "many"
    assert any(m.startswith("stages[2].batch_size:") for m in window.problems.messages())
    window.undo_stack.undo()
    window.undo_stack.undo()
    assert window.doc.is_valid and window.run_button.isEnabled()
    # choices, switches and optional groups
    inspector.editors[("schedule", "name")].edited.emit("cosine")
    assert window.doc.value(2, ("schedule", "name")) == "cosine"
    inspector.editors[("freezing", "embeddings")].input.setChecked(False)
    assert window.doc.value(2, ("freezing", "embeddings")) is False
    inspector._groups[("regularization", "early_stopping")].setChecked(False)
    assert "early_stopping" not in window.doc.stages[2].get("regularization", {})
    # reset goes back to the default by leaving the setting out
    inspector.editors[("schedule", "name")]._reset.click()
    assert "name" not in window.doc.stages[2].get("schedule", {})


def test_model_and_data_pickers(window, tmp_path):
    window.plan_view.select_row(1)
    picker = window.inspector.model_pickers["model"]
    picker.source.setCurrentIndex(1)
    picker.source.activated.emit(1)  # built-in
    assert window.doc.stages[1]["model"] == {"builtin": "bert-tiny"}
    picker.source.setCurrentIndex(0)
    picker.source.activated.emit(0)  # back to the stage before
    assert window.doc.stages[1]["model"] == {"from_stage": "pretrain-mlm"}
    data = window.inspector.data_picker
    assert data.table.columnCount() == 2
    assert [data.table.horizontalHeaderItem(i).text() for i in range(2)] == ["text", "label"]
    assert "2,000 train rows; 300 held out" in data.rows.text()
    data.path.setText("missing.csv")
    data.path.editingFinished.emit()
    assert any("file or folder not found: missing.csv" in m for m in window.problems.messages())
    assert "not found" in data.problem.text()


def test_a_builtin_distill_student_takes_the_teachers_vocabulary(window):
    from app.model.plan_document import PlanDocument
    from engine.resources import resources_dir

    plans = resources_dir() / "plans"
    window.set_document(PlanDocument.from_file(plans / "distill.yaml", as_template=True))
    window.plan_view.select_row(2)  # the student
    student = window.inspector.model_pickers["model"]
    assert "teacher" in window.inspector.model_pickers
    assert not student.vocab.isEnabled() and student.vocab.placeholderText() == "the teacher's"
    window.plan_view.select_row(0)  # the teacher's pretraining learns its own vocabulary
    assert window.inspector.model_pickers["model"].vocab.isEnabled()


def test_save_as_elsewhere_keeps_data_paths_pointing_at_the_same_files(window, tmp_path):
    target = tmp_path / "elsewhere" / "my-plan.yaml"
    target.parent.mkdir()
    assert window.files._write(target)
    assert window.doc.is_valid and not window.doc.is_dirty
    saved = yaml.safe_load(target.read_text())
    assert saved["stages"][0]["data"]["path"].endswith("resources/data/corpus.txt")
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(target)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert window.files.recent()[0] == str(target)
    assert window.windowTitle().startswith("my-plan.yaml")


def test_the_window_never_imports_torch_transformers_or_datasets(tmp_path):
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from app import create_main_window\n"
        f"w = create_main_window({str(tmp_path)!r})\n"
        "w.show(); app.processEvents()\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'tokenizers') "
        "if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "heavy: []" in proc.stdout


def test_stagelab_gui_screenshot_renders_the_demo_plan(tmp_path):
    png = tmp_path / "window.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "--workspace",
            str(tmp_path),
            "gui",
            "--screenshot",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert (image.width(), image.height()) == (1400, 880)
    # A real rendering, not a blank canvas: the cards, text and palette give many colours.
    colours = {image.pixel(x, y) for x in range(0, 1400, 7) for y in range(0, 880, 7)}
    assert len(colours) > 50
