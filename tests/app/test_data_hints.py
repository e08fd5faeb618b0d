"""The data picker's rows line (app/model/data_files.rows_line): how a stage uses its rows,
a batch larger than the training rows, an ensemble's rows to evaluate on, and a missing
column instead of row counts."""

from __future__ import annotations

from pathlib import Path

from app.model.data_files import preview, rows_line
from app.model.plan_document import PlanDocument
from engine.resources import resources_dir


def csv_file(folder: Path, rows: int = 960) -> Path:
    path = folder / "rows.csv"
    lines = ["text,label"] + [f"row {i},{'pos' if i % 2 else 'neg'}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_stage(**extra) -> dict:
    return {"name": "t", "kind": "train", "data": {"path": "rows.csv", "test_ratio": 0.2}, **extra}


def test_a_batch_larger_than_the_training_rows_is_one_step_an_epoch(tmp_path):
    seen = preview(csv_file(tmp_path))
    line = rows_line(train_stage(batch_size=4096), seen)
    # 960 rows: 192 for the test, 77 of the rest for evaluation, 691 to train on.
    assert (
        line.text == "960 train rows; 192 held out for the test, 77 for evaluation, 691 to train on"
    )
    assert line.warning == (
        "batch_size 4,096 is more than the 691 training rows: each epoch is one step; lower it"
    )
    assert rows_line(train_stage(batch_size=64), seen).warning == ""
    accumulated = rows_line(train_stage(batch_size=64, grad_accum=16), seen).warning
    assert accumulated.startswith("batch_size 64 × grad_accum 16 are more than the 691")


def test_an_ensemble_says_its_rows_to_evaluate_on(tmp_path):
    seen = preview(csv_file(tmp_path))
    ensemble = {**train_stage(batch_size=4096), "kind": "ensemble", "combiner": "vote"}
    line = rows_line(ensemble, seen)
    assert line.text == "960 train rows; 192 rows to evaluate on (the test rows)"
    assert "train on" not in line.text and line.warning == ""
    weighted = rows_line({**ensemble, "combiner": "weighted"}, seen).text
    assert weighted.endswith("192 rows to evaluate on (the test rows), 77 to fit the weights on")
    no_test = {**ensemble, "data": {"path": "rows.csv"}}
    assert rows_line(no_test, seen).text == "960 train rows; 96 rows to evaluate on (the eval rows)"


def test_a_missing_column_is_said_instead_of_row_counts(tmp_path):
    seen = preview(csv_file(tmp_path))
    stage = train_stage()
    stage["data"] = {**stage["data"], "label_column": "sentiment"}
    line = rows_line(stage, seen)
    assert line.text == (
        "Rows not counted: the file has no column 'sentiment' (label_column); its columns "
        "are text, label."
    )
    # A masked-LM stage reads no label column: its rows are counted.
    pretrain = {**stage, "kind": "pretrain", "objective": "masked_lm"}
    assert rows_line(pretrain, seen).text.startswith("960 train rows")


def test_the_inspector_says_rows_to_evaluate_on_for_an_ensemble(window):
    plans = resources_dir() / "plans"
    window.set_document(PlanDocument.from_file(plans / "ensemble.yaml", as_template=True))
    window.plan_view.select_row(4)  # vote
    picker = window.inspector.data_picker
    assert "rows to evaluate on (the test rows)" in picker.rows.text()
    assert "to train on" not in picker.rows.text()
    window.plan_view.select_row(1)  # a classifier with 32 per batch: no warning
    picker = window.inspector.data_picker  # another kind: another form
    assert "to train on" in picker.rows.text() and picker.warning == ""
    window.doc.set_value(1, ("batch_size",), 4096)
    assert "each epoch is one step" in picker.warning and "⚠" in picker.rows.text()
    window.doc.set_value(1, ("data", "label_column"), "stars")
    assert "has no column 'stars'" in picker.rows.text()
