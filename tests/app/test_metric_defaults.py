"""The window shows the eval metrics a stage really records when its plan lists none
(issue 27): the inspector ticks the task's defaults and the sweep form offers them."""

from __future__ import annotations

from app.model.plan_document import UNSET, PlanDocument
from app.qt.sweep.qt_sweep_form import QtSweepForm

PLAN = """
name: defaults
stages:
  - name: sentiment
    kind: train
    model: {builtin: bert-tiny}
    data: {path: reviews.csv}
"""


def ticked(window) -> list[str]:
    # The person opens the section (folded: the plan sets no eval; its rows are made then).
    window.inspector._sections["eval"].button.setChecked(True)
    editor = window.inspector.editors[("eval", "metrics")]
    return [name for name, box in editor._boxes.items() if box.isChecked()]


def test_the_inspector_and_the_sweep_form_show_the_tasks_default_metrics(window, tmp_path):
    doc = PlanDocument.from_text(PLAN, tmp_path)
    window.set_document(doc)
    window.plan_view.select_row(0)
    assert ticked(window) == ["loss", "accuracy", "f1", "confusion_matrix"]
    form = QtSweepForm(doc)
    offered = [form.metric_box.itemText(i) for i in range(form.metric_box.count())]
    assert offered == ["loss", "accuracy", "f1"]
    assert form.metric_box.currentText() == "accuracy"  # the default objective
    form.reject()

    # The defaults follow the task; a listed choice is kept as listed.
    doc.set_value(0, ("task",), "sequence_regression")
    window.inspector.refresh()
    assert ticked(window) == ["loss", "mae", "rmse", "pearson"]
    doc.set_value(0, ("task",), UNSET)
    doc.set_value(0, ("eval", "metrics"), ["loss", "precision"])
    window.inspector.refresh()
    assert ticked(window) == ["loss", "precision"]
    window.grab().save(str(tmp_path / "inspector-metrics.png"))
