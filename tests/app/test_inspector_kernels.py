"""`kernels` in the stage inspector (issue 32, item 3): a choice in the Training box
beside precision and compile; choosing liger for a Llama stage is valid, for a BERT stage
the validator's sentence shows under it; undo clears it; an ensemble does not show it."""

from __future__ import annotations

from app.model.plan_document import UNSET, PlanDocument
from engine.resources import resources_dir

PLANS = resources_dir() / "plans"


def open_template(window, name: str) -> None:
    window.set_document(PlanDocument.from_file(PLANS / f"{name}.yaml", as_template=True))


def choose(editor, choice: str) -> None:
    """Pick a choice in the combo box as a person does (activated, not set by code)."""
    index = editor.input.findText(choice)
    editor.input.setCurrentIndex(index)
    editor.input.activated.emit(index)


def test_kernels_is_chosen_beside_precision_and_compile(window, tmp_path):
    inspector = window.inspector
    open_template(window, "llm")
    window.plan_view.select_row(0)  # pretrain, a llama-tiny causal LM
    editor = inspector.editors[("kernels",)]
    form, _ = inspector._rows[("kernels",)]
    assert form.isRowVisible(editor) and form.isRowVisible(inspector.editors[("compile",)])
    assert [editor.input.itemText(i) for i in range(editor.input.count())] == ["none", "liger"]
    assert editor.input.currentText() == "none"
    assert "Liger" in editor.input.toolTip()
    choose(editor, "liger")
    assert window.doc.value(0, ("kernels",)) == "liger"
    assert window.doc.stage_problems(0) == []  # Liger covers llama
    for width, height in ((1400, 880), (1024, 640)):
        window.resize(width, height)
        inspector.ensureWidgetVisible(editor)
        window.grab().save(str(tmp_path / f"kernels-{width}.png"))
    window.undo_stack.undo()
    assert window.doc.value(0, ("kernels",)) is UNSET

    open_template(window, "demo")
    window.plan_view.select_row(0)  # pretrain-mlm, a bert-tiny
    editor = inspector.editors[("kernels",)]
    choose(editor, "liger")
    assert window.doc.value(0, ("kernels",)) == "liger"
    problem = editor._problem
    assert not problem.isHidden()
    assert problem.text().startswith("Liger has no kernels for bert models")

    open_template(window, "ensemble")
    window.plan_view.select_row(4)  # vote: scores, trains nothing
    form, editor = inspector._rows[("kernels",)]
    assert not form.isRowVisible(editor)
