"""Adding a sweep in the editor: "Sweep this setting" on a field's label and the sweep form,
each one undoable plan edit that the plan's validation checks."""

from __future__ import annotations

from app.model.plan_document import UNSET
from app.model.sweep_edit import default_sweep, suggested_distribution
from app.qt.sweep.qt_sweep_form import QtSweepForm, sweep_setting


def test_suggested_ranges_stay_within_a_settings_limits():
    assert suggested_distribution("float", 1e-3, maximum=10) == {"log_uniform": [0.00033, 0.003]}
    assert suggested_distribution("int", 1, minimum=0) == {"choice": [0, 1, 2, 3]}
    assert suggested_distribution("int", 32, minimum=1) == {"choice": [30, 31, 32, 33, 34]}
    assert suggested_distribution("bool", True) == {"choice": [False, True]}
    assert suggested_distribution("choice", "linear", choices=("linear", "cosine")) == {
        "choice": ["linear", "cosine"]
    }
    assert suggested_distribution("float", UNSET, default=0.5, maximum=1) == {
        "log_uniform": [0.17, 1]
    }


def test_sweep_this_setting_adds_it_to_a_new_sweep_and_undo_removes_it(window):
    doc = window.doc
    window.plan_view.select_row(2)
    inspector = window.inspector
    label_keys = ("optimizer", "lr")
    spec = next(e.spec for k, e in inspector.editors.items() if k == label_keys)
    sweep_setting(inspector, label_keys, spec)
    sweep = doc.data["sweep"]
    assert sweep["objective"] == {"stage": "sentiment", "metric": "accuracy", "goal": "max"}
    assert list(sweep["space"]) == ["stages.sentiment.optimizer.lr"]
    assert doc.is_valid, doc.shown_problems
    layers = next(e.spec for k, e in inspector.editors.items() if k == ("freezing", "layers"))
    sweep_setting(inspector, ("freezing", "layers"), layers)
    assert len(doc.data["sweep"]["space"]) == 2
    window.undo_stack.undo()
    window.undo_stack.undo()
    assert "sweep" not in doc.data


def test_the_form_edits_the_sweep_section(window):
    doc = window.doc
    assert default_sweep(doc.data)["objective"]["stage"] == "sentiment"
    form = QtSweepForm(doc)
    form.target_field.setText("0.9")
    form.trials_box.setValue(5)
    form.sampler_box.setCurrentText("random")
    form._add_row("stages.sentiment.optimizer.lr", {"log_uniform": [1e-4, 3e-3]})
    form.accept()
    from app.qt.editor.undo import SetPlanValue

    window.undo_stack.push(SetPlanValue(doc, "sweep", form.result_sweep))
    sweep = doc.data["sweep"]
    assert sweep["objective"]["target"] == 0.9 and sweep["budget"] == {"trials": 5}
    assert sweep["sampler"] == "random"
    assert sweep["space"] == {"stages.sentiment.optimizer.lr": {"log_uniform": [1e-4, 3e-3]}}
    assert doc.is_valid, doc.shown_problems
    # A range the setting cannot take is a problem of the plan, with its path.
    form = QtSweepForm(doc)
    form.space_table.item(0, 1).setText("{uniform: [0.001, 20]}")
    form.accept()
    window.undo_stack.push(SetPlanValue(doc, "sweep", form.result_sweep))
    assert not doc.is_valid
    assert any("sweep.space" in str(p) for p in doc.shown_problems)
    form = QtSweepForm(doc)
    form._remove()
    window.undo_stack.push(SetPlanValue(doc, "sweep", form.result_sweep))
    assert "sweep" not in doc.data
