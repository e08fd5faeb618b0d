"""Validation reads the start of local data files: named columns must be in the header, and
the file must have rows; relative paths are taken from the plan file's folder."""

from __future__ import annotations

import json
import time

import pytest

from engine.cli.main import main
from engine.spec import PlanInvalid, load_plan

PLAN = """
name: p
stages:
  - name: mlm
    kind: pretrain
    model: {{builtin: bert-tiny}}
    data: {{path: {corpus}}}
  - name: cls
    kind: train
    model: {{from_stage: mlm}}
    data: {{path: {labelled}, text_column: {text}, label_column: {label}}}
"""


def plan_problems_for(tmp_path, files: dict[str, bytes | str], **names) -> list[str]:
    """Write data files (relative to tmp_path) and a plan in tmp_path/plans naming them."""
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
    values = {
        "corpus": "../corpus.txt",
        "labelled": "../reviews.csv",
        "text": "text",
        "label": "label",
    }
    values.update(names)
    plan = tmp_path / "plans" / "plan.yaml"
    plan.parent.mkdir(exist_ok=True)
    plan.write_text(PLAN.format(**values), encoding="utf-8")
    try:
        load_plan(plan)
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


GOOD = {"corpus.txt": "one line\nanother line\n", "reviews.csv": "text,label\ngood,pos\n"}


def test_good_files_are_valid(tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # relative paths are taken from the plan's folder, not the cwd
    assert plan_problems_for(tmp_path, GOOD) == []


def test_a_column_missing_from_the_csv_header(tmp_path):
    files = {**GOOD, "reviews.csv": "a,b\n1,2\n"}
    assert plan_problems_for(tmp_path, files, text="x") == [
        "stages[1].data.text_column: column 'x' is not in reviews.csv (columns: a, b); "
        "set text_column to one of them",
        "stages[1].data.label_column: column 'label' is not in reviews.csv (columns: a, b); "
        "set label_column to one of them",
    ]


def test_a_tsv_header_is_split_on_tabs(tmp_path):
    files = {**GOOD, "reviews.tsv": "text\tlabel\ngood\tpos\n"}
    assert plan_problems_for(tmp_path, files, labelled="../reviews.tsv") == []
    files = {**GOOD, "reviews.tsv": "text\tstars\ngood\t5\n"}
    (problem,) = plan_problems_for(tmp_path, files, labelled="../reviews.tsv")
    assert problem.startswith("stages[1].data.label_column: column 'label' is not in reviews.tsv")


@pytest.mark.parametrize(
    "content,says",
    [
        ("", "reviews.csv is empty; add rows or choose another file"),
        ("text,label\n", "reviews.csv has no rows (only a header); add rows or choose another"),
        ("text,label\n\n\n", "reviews.csv has no rows (only a header)"),
    ],
)
def test_an_empty_csv_has_no_rows(tmp_path, content, says):
    files = {**GOOD, "reviews.csv": content}
    (problem,) = plan_problems_for(tmp_path, files)
    assert problem.startswith(f"stages[1].data.path: {says}")


def test_an_empty_text_corpus(tmp_path):
    files = {**GOOD, "corpus.txt": "\n  \n"}
    assert plan_problems_for(tmp_path, files) == [
        "stages[0].data.path: corpus.txt is empty; add rows or choose another file"
    ]


def test_jsonl_columns_and_rows(tmp_path):
    rows = "".join(json.dumps({"sentence": f"s{i}", "label": "a"}) + "\n" for i in range(3))
    files = {**GOOD, "d.jsonl": rows}
    assert plan_problems_for(tmp_path, files, labelled="../d.jsonl") == [
        "stages[1].data.text_column: column 'text' is not in d.jsonl (columns: sentence, "
        "label); set text_column to one of them"
    ]
    assert plan_problems_for(tmp_path, files, labelled="../d.jsonl", text="sentence") == []
    files = {**GOOD, "d.jsonl": "\n"}
    assert plan_problems_for(tmp_path, files, labelled="../d.jsonl") == [
        "stages[1].data.path: d.jsonl is empty; add rows or choose another file"
    ]


def test_a_json_array_file(tmp_path):
    files = {**GOOD, "d.json": json.dumps([{"text": "x", "y": 1}])}
    (problem,) = plan_problems_for(tmp_path, files, labelled="../d.json")
    assert problem.startswith("stages[1].data.label_column: column 'label' is not in d.json")
    files = {**GOOD, "d.json": "[]"}
    assert plan_problems_for(tmp_path, files, labelled="../d.json") == [
        "stages[1].data.path: d.json has no rows (only a header); add rows or choose another file"
    ]


def test_a_folder_of_split_files_checks_the_train_split(tmp_path):
    files = {
        **GOOD,
        "splits/train.csv": "body,label\nx,1\n",
        "splits/validation.csv": "text,label\nx,1\n",
    }
    assert plan_problems_for(tmp_path, files, labelled="../splits") == [
        "stages[1].data.text_column: column 'text' is not in train.csv (columns: body, label); "
        "set text_column to one of them"
    ]


def test_a_data_file_that_is_not_utf8(tmp_path):
    files = {**GOOD, "reviews.csv": "text,label\ncafé,1\n".encode("latin-1")}
    (problem,) = plan_problems_for(tmp_path, files)
    assert problem.startswith("stages[1].data.path: reviews.csv is not UTF-8 text")


def test_only_the_start_of_a_huge_file_is_read(tmp_path):
    files = {**GOOD, "reviews.csv": "body,label\nx,1\n"}
    plan_problems_for(tmp_path, files)
    with (tmp_path / "reviews.csv").open("r+b") as fh:
        fh.truncate(2_000_000_000)  # sparse: 2 GB that are never written
    start = time.perf_counter()
    (problem,) = plan_problems_for(tmp_path, {})
    assert time.perf_counter() - start < 2
    assert "column 'text' is not in reviews.csv (columns: body, label)" in problem


def test_stagelab_validate_reports_them_with_exit_2(tmp_path, capsys):
    files = {**GOOD, "reviews.csv": "a,b\n"}
    plan_problems_for(tmp_path, files)
    assert main(["validate", str(tmp_path / "plans" / "plan.yaml")]) == 2
    err = capsys.readouterr().err
    assert "stages[1].data.path: reviews.csv has no rows (only a header)" in err


def test_a_plan_with_other_problems_still_gets_its_data_checked(tmp_path):
    files = {**GOOD, "reviews.csv": "a,b\n1,2\n"}
    plan_problems_for(tmp_path, files)
    plan = tmp_path / "plans" / "plan.yaml"
    plan.write_text(plan.read_text().replace("name: mlm", "name: mlm\n    batch_size: 0"))
    with pytest.raises(PlanInvalid) as info:
        load_plan(plan)
    paths = [p.path for p in info.value.problems]
    assert "stages[0].batch_size" in paths
    assert "stages[1].data.text_column" in paths
