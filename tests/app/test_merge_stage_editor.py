"""The `merge` stage in the window (issue 33): the palette offers it, its card names the
members and the method, and the inspector edits its members as an ensemble's (stage
cards dropped on the list), with the base picker and TIES's density shown only for the
methods that read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.model.plan_document import PlanDocument
from app.model.stage_catalog import kind_info, new_stage
from engine.resources import resources_dir
from tests.app.test_members_editor import drop_on, stage_mime

PLANS = resources_dir() / "plans"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def merge_window(window):
    window.set_document(PlanDocument.from_file(PLANS / "merge.yaml", as_template=True))
    return window


def test_the_palette_offers_merge_and_a_new_one_takes_the_last_two_stages():
    info = kind_info("merge")
    assert info is not None and info.runnable and info.title == "Merge"
    stage = new_stage("merge", ["mlm", "a", "b"], ["mlm", "a", "b"])
    assert stage["members"] == [{"from_stage": "a"}, {"from_stage": "b"}]
    assert stage["method"] == "average"


def test_the_inspector_edits_a_merge_stage(merge_window):
    from app.qt.editor.qt_stage_card import MODEL_LINE_ROLE

    window = merge_window
    model = window.plan_view.model()
    assert (
        model.index(6)
        .data(MODEL_LINE_ROLE)
        .startswith("members: tune-a, tune-b, tune-c · merged by ties")
    )
    window.plan_view.select_row(4)  # soup: average, no base
    inspector = window.inspector
    assert inspector.members is not None and inspector.members.list.count() == 3
    assert not inspector._model_boxes["base"].isVisibleTo(inspector)
    assert not inspector.editors[("density",)].isVisibleTo(inspector)
    assert not inspector.editors[("weights",)].isVisibleTo(inspector)
    inspector.editors[("method",)].edited.emit("weighted")
    assert inspector.editors[("weights",)].isVisibleTo(inspector)
    inspector.editors[("method",)].edited.emit("ties")
    assert not inspector.editors[("weights",)].isVisibleTo(inspector)
    assert window.doc.stages[4]["method"] == "ties"
    assert inspector._model_boxes["base"].isVisibleTo(inspector)
    assert inspector.editors[("density",)].isVisibleTo(inspector)
    # Without a base, the base picker says what to do.
    assert "ties merges" in inspector.model_pickers["base"].problem.text()
    # A stage card dropped on the list becomes a member (the pretrain stage here: the
    # validation then says it is not a classifier).
    assert drop_on(inspector.members.list.viewport(), stage_mime(0))
    assert window.doc.stages[4]["members"][-1] == {"from_stage": "mlm"}
    for _ in range(3):
        window.undo_stack.undo()
    assert window.doc.stages[4]["method"] == "average"
    assert len(window.doc.stages[4]["members"]) == 3

    window.plan_view.select_row(6)  # ties: its base is the pretrain stage
    inspector = window.inspector
    assert inspector._model_boxes["base"].isVisibleTo(inspector)
    assert inspector.model_pickers["base"].problem.text() == ""
    SHOTS.mkdir(exist_ok=True)
    for size in ((1400, 880), (1024, 640)):
        window.resize(*size)
        window.grab().save(str(SHOTS / f"merge-inspector-{size[0]}.png"))


def test_the_monitor_shows_a_merges_members_beside_the_merged_model(qtbot):
    from app.qt.monitor.qt_ensemble_report import QtEnsembleReport

    view = QtEnsembleReport()
    qtbot.addWidget(view)
    view.resize(700, 520)
    view.show()
    # What merge.yaml's greedy soup recorded (engine.recipes.merge's `ensemble` event).
    members = {
        "0-tune-a": {"loss": 0.3816, "accuracy": 0.8542},
        "1-tune-b": {"loss": 0.3452, "accuracy": 0.8708},
        "2-tune-c": {"loss": 0.3879, "accuracy": 0.8625},
    }
    view.show_reports(
        {
            "greedy": {
                "combiner": "merge (greedy soup)",
                "method": "greedy_soup",
                "split": "test",
                "rows": 240,
                "members": members,
                "ensemble": {"loss": 0.3452, "accuracy": 0.8708},
                "weights": {"0-tune-a": 0.0, "1-tune-b": 1.0, "2-tune-c": 0.0},
                "labels": ["negative", "positive"],
            }
        }
    )
    rows = [view.table.verticalHeaderItem(r).text() for r in range(view.table.rowCount())]
    assert rows == ["0-tune-a", "1-tune-b", "2-tune-c", "merged"]
    assert view.table.item(3, 0).font().bold()
    assert view.caption.text().startswith("greedy: merge (greedy soup) of 3 members on 240 test")
    weight = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert view.table.item(0, weight.index("weight")).text() == "0.0000"
    qtbot.wait(200)  # let the bars' axis lay out its names before the screenshot
    view.grab().save(str(SHOTS / "merge-report.png"))
