"""View models without a window: plan edits, paths on save-as, stage summaries, data
previews, devices in use."""

from __future__ import annotations

import os
import socket

import yaml

from app.model.data_files import preview
from app.model.devices import gpus_in_use, gpus_text
from app.model.plan_document import UNSET, PlanDocument, rebase_paths, set_in
from app.model.stage_catalog import new_stage, stage_kinds
from engine.resources import demo_plan_path
from engine.store import queries
from engine.store.db import Store
from engine.store.workspace import Workspace


def test_unsetting_a_setting_removes_groups_left_empty():
    stage = {"optimizer": {"lr": 1}, "freezing": {"unfreeze": {"every_steps": 3}}}
    set_in(stage, ("freezing", "unfreeze", "every_steps"), UNSET)
    set_in(stage, ("schedule", "name"), "cosine")
    assert stage == {"optimizer": {"lr": 1}, "schedule": {"name": "cosine"}}


def test_edits_emit_changes_and_track_unsaved_state(tmp_path):
    doc = PlanDocument.from_file(demo_plan_path(), as_template=True)
    seen = []
    doc.changed.connect(lambda what, i: seen.append((what, i)))
    assert not doc.is_dirty and doc.is_valid and doc.path is None
    doc.set_value(1, ("optimizer", "lr"), 0)
    assert seen == [("stage", 1)] and doc.is_dirty
    assert [p.path for _, p in doc.stage_problems(1)] == ["stages[1].optimizer.lr"]
    doc.move_stage(0, 2)
    assert doc.stage_names() == ["topics", "sentiment", "pretrain-mlm"]
    doc.save(tmp_path / "p.yaml")
    assert not doc.is_dirty and doc.plan_dir == tmp_path


def test_save_as_rebases_relative_paths(tmp_path):
    data = {"stages": [{"data": {"path": "../data/a.csv"}, "model": {"path": "/abs/m"}}]}
    moved = rebase_paths(data, tmp_path / "plans", tmp_path / "x" / "y")
    assert moved["stages"][0]["data"]["path"] == "../../data/a.csv"
    assert moved["stages"][0]["model"]["path"] == "/abs/m"
    assert data["stages"][0]["data"]["path"] == "../data/a.csv"  # the original is untouched


def test_new_stages_start_from_the_stage_before_them():
    assert new_stage("train", ["a", "b"], ["a", "b", "c"])["model"] == {"from_stage": "b"}
    first = new_stage("pretrain", [], ["pretrain"])
    assert first["model"] == {"builtin": "bert-tiny"} and first["name"] == "pretrain-2"
    assert [k.kind for k in stage_kinds()][:2] == ["pretrain", "train"]


def test_data_preview_counts_rows_of_every_format(tmp_path):
    (tmp_path / "a.csv").write_text('text,label\n"two\nlines",x\nb,y\n')
    (tmp_path / "a.jsonl").write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 2}\n')
    (tmp_path / "a.json").write_text('[{"text": "a"}, {"text": "b"}, {"text": "c"}]')
    (tmp_path / "a.txt").write_text("one\n\ntwo\nthree\n")
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "train.jsonl").write_text('{"text": "a"}\n' * 5)
    (tmp_path / "split" / "validation.jsonl").write_text('{"text": "a"}\n' * 2)
    assert preview(tmp_path / "a.csv").split_rows == {"train": 2}
    assert preview(tmp_path / "a.csv").rows[0]["text"] == "two\nlines"
    assert preview(tmp_path / "a.jsonl").columns == ["text", "label"]
    assert preview(tmp_path / "a.json").split_rows == {"train": 3}
    assert preview(tmp_path / "a.txt").split_rows == {"train": 3}
    assert preview(tmp_path / "split").split_rows == {"train": 5, "validation": 2}
    assert "cannot be read" in preview(tmp_path / "nope.csv").error
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    assert "not readable as jsonl" in preview(tmp_path / "bad.jsonl").error


def test_gpus_used_by_active_runs_are_marked(tmp_path):
    ws = Workspace.open(tmp_path)
    store = Store.open(ws.db_path)
    text = yaml.safe_dump({"name": "p"})
    exp = queries.create_experiment(store, "p", text, str(tmp_path))
    busy = queries.create_run(
        store, exp, plan_text=text, plan_dir=".", gpus="0,2", runs_dir=ws.runs_dir
    )
    queries.claim_run(store, busy, pid=os.getpid(), host=socket.gethostname())
    done = queries.create_run(
        store, exp, plan_text=text, plan_dir=".", gpus="1", runs_dir=ws.runs_dir
    )
    queries.set_run_status(store, done, "finished")
    assert gpus_in_use(store) == {0: busy, 2: busy}
    assert gpus_text([]) == "cpu" and gpus_text([2, 0]) == "0,2"


def test_a_distillation_dropped_after_a_tiny_stage_gets_a_smaller_student(tmp_path):
    from app.model.plan_document import PlanDocument
    from app.model.problem_words import plan_line

    chain = [
        {"name": "mlm", "kind": "pretrain", "objective": "masked_lm",
         "model": {"builtin": "bert-tiny"}, "data": {"path": "c.txt"}},
        {"name": "sentiment", "kind": "train", "task": "sequence_classification",
         "model": {"from_stage": "mlm"}, "data": {"path": "r.csv"}},
    ]  # fmt: skip
    distill = new_stage("distill", ["mlm", "sentiment"], ["mlm", "sentiment"], chain)
    # bert-tiny has 2 layers: the student keeps the teacher's lowest one, and its task.
    assert distill["model"] == {"from_stage": "sentiment"} and distill["student_layers"] == 1
    assert distill["teacher"] == {"from_stage": "sentiment"}
    assert distill["task"] == "sequence_classification"
    doc = PlanDocument({"name": "p", "stages": [*chain, distill]}, None, tmp_path)
    # Only the data left to choose (and the files of this made-up plan).
    assert all("data" in plan_line(p, doc.stage_names()).lower() for p in doc.problems)
    # A Hub teacher's depth is not known here: a tiny built-in student.
    assert new_stage("distill", [], [])["model"] == {"builtin": "bert-tiny"}
