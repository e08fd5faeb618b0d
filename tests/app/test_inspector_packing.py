"""`packing` in the stage inspector (issue 32, item 2): a check box in the Training box of
a language-model stage; on, the LR preview draws that stage's count as an upper bound
(dashed, said in its tooltip); a classifier stage and an ensemble do not show it."""

from __future__ import annotations

from app.model.plan_document import UNSET, PlanDocument
from engine.resources import resources_dir
from engine.spec.plan_steps import PACKED_ESTIMATE

PLANS = resources_dir() / "plans"


def open_template(window, name: str) -> None:
    window.set_document(PlanDocument.from_file(PLANS / f"{name}.yaml", as_template=True))


def test_packing_is_a_check_box_of_language_model_stages(window, tmp_path):
    inspector = window.inspector
    open_template(window, "llm")
    window.plan_view.select_row(1)  # sft-lora: instruction tuning
    editor = inspector.editors[("packing",)]
    form, _ = inspector._rows[("packing",)]
    assert form.isRowVisible(editor)
    assert not editor.input.isChecked()
    assert "max_length" in editor.input.toolTip() or "max_length" in editor.toolTip()
    before = window.lr_preview.curves[1].steps
    editor.input.click()
    assert window.doc.value(1, ("packing",)) is True
    assert window.doc.stage_problems(1) == []
    window.lr_preview.refresh()
    curve = window.lr_preview.curves[1]
    assert (curve.steps, curve.estimate) == (before, PACKED_ESTIMATE)
    for width, height in ((1400, 880), (1024, 640)):
        window.resize(width, height)
        inspector.ensureWidgetVisible(editor)
        window.grab().save(str(tmp_path / f"packing-{width}.png"))
    window.undo_stack.undo()
    assert window.doc.value(1, ("packing",)) is UNSET

    open_template(window, "demo")
    window.plan_view.select_row(1)  # topics: a sequence classifier
    form, editor = inspector._rows[("packing",)]
    assert not form.isRowVisible(editor)
    window.plan_view.select_row(0)  # pretrain-mlm: masked-LM packs
    form, editor = inspector._rows[("packing",)]
    assert form.isRowVisible(editor)
