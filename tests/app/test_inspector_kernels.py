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


def test_a_clone_asking_for_liger_on_the_cpu_is_refused_before_its_experiment_is_made(
    window, monkeypatch
):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from engine.launch import runs as launch
    from engine.store import queries

    started, said = [], []
    monkeypatch.setattr(launch, "start_engine", lambda ws, run_id, **k: started.append(run_id))
    open_template(window, "llm")
    window.run_plan()  # kernels: none on the CPU: recorded and started
    assert len(started) == 1
    store = window.store()
    source = queries.get_run(store, started[0]).experiment_id
    window.runs.clone_experiment(source)
    window.plan_view.select_row(0)
    choose(window.inspector.editors[("kernels",)], "liger")

    def read_and_close() -> None:
        if said:  # read, or the run_plan below is over: a later test's box is not ours
            return
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or box.objectName() != "needsGpuProblem":
            QTimer.singleShot(20, read_and_close)
            return
        said.append(f"{box.windowTitle()}\n{box.text()}\n{box.informativeText()}")
        box.button(QMessageBox.StandardButton.Ok).click()

    QTimer.singleShot(0, read_and_close)
    window.run_plan()  # the CPU is picked: refused, and the clone's experiment not made
    said.append("")  # ends read_and_close's looking if no box came
    assert "Nothing was started" in said[0] and "stages[0].kernels" in said[0]
    assert len(started) == 1 and len(queries.list_experiments(store)) == 1
    window.undo_stack.undo()  # kernels back to none: the clone runs, in an experiment of its own
    window.run_plan()
    assert len(started) == 2
    clone = queries.get_run(store, started[1]).experiment_id
    assert clone != source and len(queries.list_experiments(store)) == 2
    window.runs.monitor.close_run()
