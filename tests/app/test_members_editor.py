"""The members of joint and ensemble stages edited as a list in the inspector: add, remove,
move and change a member as single undo steps, the selected member's settings below the
list, the member choice of the model picker, stage cards dropped onto an ensemble, the
words on the cards, and the joint inspector on a small screen."""

from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import QByteArray, QMimeData, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from app.model import members as m
from app.model.plan_document import PlanDocument
from app.model.stage_catalog import new_stage
from app.model.stage_summary import model_line
from app.qt.editor.qt_plan_view import STAGE_MIME
from engine.resources import resources_dir

DATA = {"path": "../data/reviews.csv", "max_length": 48}


def joint_plan() -> dict:
    return {
        "version": 1,
        "name": "joint",
        "stages": [
            {
                "name": "mlm",
                "kind": "pretrain",
                "model": {"builtin": "bert-tiny"},
                "data": {"path": "../data/corpus.txt", "format": "text"},
            },
            {
                "name": "multitask",
                "kind": "joint",
                "coupling": "shared_backbone",
                "model": {"from_stage": "mlm"},
                "members": [
                    {"name": "sentiment", "task": "sequence_classification", "data": dict(DATA)},
                    {
                        "name": "intensity",
                        "task": "sequence_regression",
                        "weight": 0.5,
                        "data": {**DATA, "label_column": "rating"},
                    },
                ],
            },
            {
                "name": "fine",
                "kind": "train",
                "model": {"from_stage": "multitask", "member": "sentiment"},
                "data": dict(DATA),
            },
            {
                "name": "pair",
                "kind": "ensemble",
                "members": [
                    {"from_stage": "fine"},
                    {"from_stage": "multitask", "member": "sentiment"},
                ],
                "combiner": "average",
                "weights": [1.0, 2.0],
                "data": dict(DATA),
            },
            {"name": "later", "kind": "train", "model": {"from_stage": "fine"}, "data": dict(DATA)},
        ],
    }


@pytest.fixture
def joint_window(window):
    doc = PlanDocument(joint_plan(), None, resources_dir() / "plans")
    window.set_document(doc)
    return window


def members_of(window, row: int) -> list:
    return copy.deepcopy(window.doc.stages[row]["members"])


# -- the plan edits, without Qt ------------------------------------------------------------------


def test_list_edits_keep_an_ensembles_weights_with_their_members():
    stages = joint_plan()["stages"]
    moved = m.move_member(stages, 3, 1, 0)
    assert moved[3]["members"][0] == {"from_stage": "multitask", "member": "sentiment"}
    assert moved[3]["weights"] == [2.0, 1.0]
    removed = m.remove_member(stages, 3, 0)
    assert removed[3]["weights"] == [2.0] and len(removed[3]["members"]) == 1
    added = m.add_member(stages, 3)
    assert added[3]["members"][-1] == {"from_stage": "mlm"}  # the latest not yet a member
    assert added[3]["weights"] == [1.0, 2.0, 1.0]
    assert stages == joint_plan()["stages"]  # nothing changed in place


def test_a_new_joint_member_and_renaming_one_renames_the_references_to_it():
    stages = joint_plan()["stages"]
    added = m.add_member(stages, 1)
    assert added[1]["members"][-1] == {"name": "task-a", "task": "sequence_classification"}
    stages[1]["coupling"] = "mutual"
    stages[1]["members"][1]["model"] = {"builtin": "bert-mini"}
    assert m.new_member(stages, 1)["model"] == {"builtin": "bert-mini"}
    stages[3]["members"][0] = {"from_stage": "multitask", "member": "intensity"}
    renamed = m.set_member_value(stages, 1, 0, ("name",), "polarity")
    assert renamed[1]["members"][0]["name"] == "polarity"
    assert renamed[2]["model"] == {"from_stage": "multitask", "member": "polarity"}
    assert renamed[3]["members"][1]["member"] == "polarity"
    assert renamed[3]["members"][0]["member"] == "intensity"  # another member's stays


def test_drops_take_earlier_stages_only():
    stages = joint_plan()["stages"]
    assert m.drop_refusal(stages, 3, 0) == ""
    assert "does not come before" in m.drop_refusal(stages, 3, 4)
    assert "ensemble" in m.drop_refusal(stages, 1, 0)
    dropped = m.drop_stage(stages, 3, 1)  # a joint stage: one member's model
    assert dropped[3]["members"][-1] == {"from_stage": "multitask", "member": "sentiment"}


def test_new_joint_stage_and_the_cards_words():
    joint = new_stage("joint", ["mlm"], ["mlm"])
    assert joint["coupling"] == "shared_backbone"
    assert joint["model"] == {"from_stage": "mlm"}
    assert [x["name"] for x in joint["members"]] == ["task-a", "task-b"]
    assert new_stage("joint", [], [])["model"] == {"builtin": "bert-tiny"}
    stages = joint_plan()["stages"]
    assert model_line(stages, 1) == (
        "shared encoder from mlm · sentiment (classification, w 1) + intensity (regression, w 0.5)"
    )
    assert model_line(stages, 3).startswith(
        "members: fine, multitask/sentiment · average    Data: reviews.csv"
    )
    stages[1]["coupling"] = "mutual"
    assert model_line(stages, 1).startswith("mutual learning · sentiment")


def test_a_new_joint_stage_only_lacks_its_members_data(tmp_path):
    doc = PlanDocument.empty(tmp_path)
    doc.insert_stage(0, new_stage("joint", [], []))
    paths = {p.path for p in doc.problems}
    assert paths == {"stages[0].members[0].data", "stages[0].members[1].data"}, doc.problems


# -- the inspector ----------------------------------------------------------------------------


def test_add_remove_move_are_single_undo_steps_that_restore_the_list(joint_window):
    window, stack = joint_window, joint_window.undo_stack
    window.plan_view.select_row(1)
    editor = window.inspector.members
    original = members_of(window, 1)
    assert editor.list.count() == 2
    assert editor.list.item(1).text() == "intensity · regression · w 0.5 · reviews.csv"

    steps = []
    editor.add_button.click()
    steps.append(members_of(window, 1))
    assert steps[-1][-1]["name"] == "task-a" and editor.row == 2
    assert editor.editors[("name",)].input.text() == "task-a"  # the new member is shown
    editor.up_button.click()
    steps.append(members_of(window, 1))
    assert [x["name"] for x in steps[-1]] == ["sentiment", "task-a", "intensity"]
    assert editor.row == 1
    editor.list.setCurrentRow(0)
    editor.down_button.click()
    steps.append(members_of(window, 1))
    assert [x["name"] for x in steps[-1]] == ["task-a", "sentiment", "intensity"]
    editor.remove_button.click()  # the moved one, still selected
    steps.append(members_of(window, 1))
    assert [x["name"] for x in steps[-1]] == ["task-a", "intensity"]
    assert stack.undoText() == "Remove member 'sentiment'"

    for before in [*reversed(steps[:-1]), original]:
        stack.undo()
        assert members_of(window, 1) == before
    assert editor.list.count() == 2
    for after in steps:
        stack.redo()
        assert members_of(window, 1) == after


def test_the_selected_members_fields_write_into_the_plan(joint_window, qtbot):
    window, stack = joint_window, joint_window.undo_stack
    window.plan_view.select_row(1)
    editor = window.inspector.members
    editor.list.setCurrentRow(1)
    assert "intensity" in editor.detail_title.text()
    assert editor.data_picker.label_column.currentText() == "rating"
    assert editor.data_picker.table.columnCount() >= 2  # the data preview
    weight = editor.editors[("weight",)]
    assert weight.input.text() == "0.5"
    original = members_of(window, 1)
    for text in ("0.7", "0.75"):  # typing twice in one field: one undo step
        weight.input.setText(text)
        weight.input.editingFinished.emit()
    assert window.doc.stages[1]["members"][1]["weight"] == 0.75
    assert "w 0.75" in editor.list.item(1).text()
    assert stack.undoText() == "Change weight of 'intensity'"
    stack.undo()
    assert members_of(window, 1) == original
    stack.redo()

    editor.editors[("task",)].edited.emit("sequence_classification")
    editor.editors[("metrics",)].edited.emit(["loss", "accuracy"])
    lr = editor.editors[("lr_multiplier",)]
    lr.input.setText("-1")
    lr.input.editingFinished.emit()
    member = window.doc.stages[1]["members"][1]
    assert member["task"] == "sequence_classification"
    assert member["metrics"] == ["loss", "accuracy"]
    assert member["lr_multiplier"] == -1
    assert "greater than 0" in lr._problem.text()  # its problem under the field
    assert editor.list.item(1).text().startswith("⚠")
    data = editor.data_picker
    data.path.setText("other.csv")
    data.path.editingFinished.emit()
    assert window.doc.stages[1]["members"][1]["data"]["path"] == "other.csv"
    assert "rating" == window.doc.stages[1]["members"][1]["data"]["label_column"]
    editor.list.setCurrentRow(0)
    name = editor.editors[("name",)]
    name.input.setText("polarity")
    name.input.editingFinished.emit()
    assert window.doc.stages[1]["members"][0]["name"] == "polarity"
    # the references to the member follow (one step)
    assert window.doc.stages[2]["model"]["member"] == "polarity"
    assert window.doc.stages[3]["members"][1]["member"] == "polarity"
    stack.undo()
    assert window.doc.stages[3]["members"][1]["member"] == "sentiment"
    assert window.doc.stages[2]["model"]["member"] == "sentiment"


def test_member_models_show_with_mutual_coupling_only(joint_window):
    window = joint_window
    window.plan_view.select_row(1)
    inspector = window.inspector
    editor = inspector.members
    assert not editor.model_picker.isVisibleTo(inspector)
    assert inspector._model_boxes["model"].isVisibleTo(inspector)
    assert not inspector.editors[("mutual_weight",)].isVisibleTo(inspector)
    inspector.editors[("coupling",)].edited.emit("mutual")
    assert editor.model_picker.isVisibleTo(inspector)
    assert "model" in editor.model_picker.problem.text() or editor.list.item(0).text()[0] == "⚠"
    assert inspector.editors[("mutual_weight",)].isVisibleTo(inspector)
    picker = editor.model_picker
    picker.source.setCurrentIndex(1)
    picker.source.activated.emit(1)  # built-in
    assert window.doc.stages[1]["members"][0]["model"] == {"builtin": "bert-tiny"}


def test_the_model_picker_names_a_joint_stages_member(joint_window):
    window = joint_window
    window.plan_view.select_row(2)
    picker = window.inspector.model_pickers["model"]
    assert picker.member.isVisibleTo(window.inspector)
    assert [picker.member.itemText(i) for i in range(picker.member.count())] == [
        "sentiment",
        "intensity",
    ]
    picker.member.setCurrentIndex(1)
    picker.member.activated.emit(1)
    assert window.doc.stages[2]["model"] == {"from_stage": "multitask", "member": "intensity"}
    picker.stage.setCurrentText("mlm")
    picker.stage.activated.emit(picker.stage.currentIndex())
    assert window.doc.stages[2]["model"] == {"from_stage": "mlm"}  # member cleared
    assert not picker.member.isVisibleTo(window.inspector)
    picker.stage.setCurrentText("multitask")
    picker.stage.activated.emit(picker.stage.currentIndex())
    assert window.doc.stages[2]["model"] == {"from_stage": "multitask", "member": "sentiment"}
    # an ensemble member's picker has the same choice
    window.plan_view.select_row(3)
    members = window.inspector.members
    members.list.setCurrentRow(1)
    assert members.model_picker.member.currentText() == "sentiment"
    members.model_picker.member.setCurrentIndex(1)
    members.model_picker.member.activated.emit(1)
    assert window.doc.stages[3]["members"][1] == {"from_stage": "multitask", "member": "intensity"}


def stage_mime(row: int) -> QMimeData:
    mime = QMimeData()
    mime.setData(STAGE_MIME, QByteArray(str(row).encode()))
    return mime


def drop_on(widget: QWidget, mime: QMimeData) -> bool:
    """Drag `mime` over `widget` and drop it; whether the drop was taken."""
    pos = QPointF(20, 20)
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(widget, QDragEnterEvent(pos.toPoint(), actions, mime, buttons, mods))
    QApplication.sendEvent(widget, QDragMoveEvent(pos.toPoint(), actions, mime, buttons, mods))
    event = QDropEvent(pos, actions, mime, buttons, mods)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_a_stage_card_dropped_on_an_ensemble_becomes_a_member(joint_window):
    window, stack = joint_window, joint_window.undo_stack
    window.plan_view.select_row(3)
    editor = window.inspector.members
    original = members_of(window, 3)
    assert drop_on(editor.list.viewport(), stage_mime(0))
    assert members_of(window, 3) == [*original, {"from_stage": "mlm"}]
    assert window.doc.stages[3]["weights"] == [1.0, 2.0, 1.0]
    assert stack.undoText() == "Add member 'mlm'" and editor.row == 2
    stack.undo()
    assert members_of(window, 3) == original and window.doc.stages[3]["weights"] == [1.0, 2.0]
    # a later stage is refused, and the status bar says why
    assert not drop_on(editor.list.viewport(), stage_mime(4))
    assert members_of(window, 3) == original
    assert "'later' does not come before 'pair'" in window.statusBar().currentMessage()
    # a joint stage's list takes no drops
    window.plan_view.select_row(1)
    assert not window.inspector.members.list.acceptDrops()


def test_cards_show_the_members(joint_window):
    from app.qt.editor.qt_stage_card import MODEL_LINE_ROLE

    model = joint_window.plan_view.model()
    assert "sentiment (classification, w 1)" in model.index(1).data(MODEL_LINE_ROLE)
    # elided on a narrow card, whole in the tooltip
    assert model.index(1).data(Qt.ItemDataRole.ToolTipRole) == model.index(1).data(MODEL_LINE_ROLE)
    assert model.index(3).data(MODEL_LINE_ROLE).startswith("members: fine, multitask/sentiment")
    joint_window.plan_view.select_row(3)
    joint_window.inspector.members.remove_button.click()
    assert model.index(3).data(MODEL_LINE_ROLE).startswith("members: multitask/sentiment · ")


def test_renaming_a_stage_reaches_joint_members_and_member_references(joint_window):
    window = joint_window
    window.plan_view.select_row(1)
    window.inspector._set(("name",), "mtl")
    assert window.doc.stages[2]["model"] == {"from_stage": "mtl", "member": "sentiment"}
    assert window.doc.stages[3]["members"][1] == {"from_stage": "mtl", "member": "sentiment"}
    window.undo_stack.undo()
    assert window.doc.stages[2]["model"]["from_stage"] == "multitask"


def test_the_joint_inspector_is_usable_at_1024_by_640(joint_window, qtbot):
    from tests.app.test_small_screen import unclipped_size

    window = joint_window
    window.resize(1024, 640)
    window.plan_view.select_row(1)
    qtbot.wait(50)
    inspector = window.inspector
    editor = inspector.members
    editor.list.setCurrentRow(1)
    qtbot.wait(20)
    body = inspector.widget()
    assert inspector.width() >= 320
    assert body.width() <= inspector.viewport().width()  # no sideways overflow
    parts = [
        editor.list,
        editor.add_button,
        editor.remove_button,
        editor.up_button,
        editor.down_button,
        editor.editors[("weight",)],
        editor.editors[("metrics",)],
        editor.data_picker.path,
        editor.data_picker.browse,
        editor.data_picker.label_column,
        editor.data_picker.table,
    ]
    for part in parts:
        inspector.ensureWidgetVisible(part, 0, 30)
        qtbot.wait(10)
        assert part.isVisible(), part.objectName()
        right = part.mapTo(body, part.rect().topRight()).x()
        assert right <= inspector.viewport().width(), (part.objectName(), right)
        assert part.width() >= part.minimumSizeHint().width(), part.objectName()
        assert unclipped_size(part) == part.size(), part.objectName()
