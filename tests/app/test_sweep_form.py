"""Adding a sweep in the editor: "Sweep this setting" on a field's label and the sweep form,
each one undoable plan edit that the plan's validation checks."""

from __future__ import annotations

from app.model.plan_document import UNSET
from app.model.sweep_edit import default_sweep, suggested_distribution
from app.qt.sweep.qt_sweep_form import sweep_setting


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


def with_form(qtbot, window, act) -> None:
    """Open Run → Sweep… and let `act(form)` use the modal form (it must close it)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    done = []

    def use() -> None:
        form = QApplication.activeModalWidget()
        if form is None or form.objectName() != "sweepForm":
            QTimer.singleShot(20, use)
            return
        try:
            act(form)
        finally:
            done.append(form.isVisible())
            if form.isVisible():
                form.reject()

    QTimer.singleShot(0, use)
    window.sweep_action.trigger()
    assert done == [False], "the form was left open"


def click(qtbot, button) -> None:
    from PySide6.QtCore import Qt

    assert button.isEnabled() and button.isVisible(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_the_form_edits_the_sweep_section_with_fields_per_distribution(qtbot, window):
    doc = window.doc
    assert default_sweep(doc.data)["objective"]["stage"] == "sentiment"

    def first(form):
        assert not form.remove_button.isEnabled()  # no sweep to remove yet
        assert not form.remove_setting_button.isEnabled()
        click(qtbot, form.add_setting_button)
        [row] = form.rows
        assert row.setting_box.currentText() == "stages.sentiment.optimizer.lr"
        assert row.kind_box.currentData() == "log_uniform"
        assert not row.choices_field.isEnabled() and not row.step_field.isEnabled()
        row.low_field.setText("1e-4")
        row.high_field.setText("0.003")
        form.target_field.setText("0.9")
        form.trials_box.setValue(5)
        form.sampler_box.setCurrentText("random")
        click(qtbot, form.ok_button)

    with_form(qtbot, window, first)
    sweep = doc.data["sweep"]
    assert sweep["objective"]["target"] == 0.9 and sweep["budget"] == {"trials": 5}
    assert sweep["sampler"] == "random"
    assert sweep["space"] == {"stages.sentiment.optimizer.lr": {"log_uniform": [1e-4, 3e-3]}}
    assert doc.is_valid, doc.shown_problems
    assert window.tabs.tabText(0) == "Plan · sweep"

    def second(form):
        # Add a setting, then remove it again; a choice replaces the range; Cancel first.
        [row] = form.rows
        assert row.low_field.text() == "0.0001" and row.high_field.text() == "0.003"
        click(qtbot, form.add_setting_button)
        assert len(form.rows) == 2
        assert form.rows[1].setting_box.currentText() == "stages.sentiment.optimizer.weight_decay"
        click(qtbot, form.remove_setting_button)
        assert len(form.rows) == 1
        click(qtbot, form.cancel_button)

    with_form(qtbot, window, second)
    assert doc.data["sweep"]["space"] == sweep["space"]

    def third(form):
        [row] = form.rows
        row.kind_box.setCurrentIndex(row.kind_box.findData("choice"))
        assert row.choices_field.isEnabled() and not row.low_field.isEnabled()
        row.choices_field.setText("0.001, 0.002")
        click(qtbot, form.add_setting_button)
        layers = form.rows[1]
        layers.setting_box.setCurrentText("stages.sentiment.freezing.layers")
        layers.kind_box.setCurrentIndex(layers.kind_box.findData("int"))
        layers.low_field.setText("0")
        layers.high_field.setText("2")
        assert layers.step_field.isEnabled()
        click(qtbot, form.ok_button)

    with_form(qtbot, window, third)
    assert doc.data["sweep"]["space"] == {
        "stages.sentiment.optimizer.lr": {"choice": [0.001, 0.002]},
        "stages.sentiment.freezing.layers": {"int": [0, 2]},
    }
    assert doc.is_valid, doc.shown_problems

    def out_of_range(form):
        row = form.rows[0]
        row.kind_box.setCurrentIndex(row.kind_box.findData("uniform"))
        row.low_field.setText("0.001")
        row.high_field.setText("20")
        click(qtbot, form.ok_button)

    # A range the setting cannot take is a problem of the plan, with its path.
    with_form(qtbot, window, out_of_range)
    assert not doc.is_valid
    assert any("sweep.space" in str(p) for p in doc.shown_problems)

    def remove(form):
        # "Remove sweep" sits on the left, apart from OK and Cancel.
        ok, cancel, remove = form.ok_button, form.cancel_button, form.remove_button
        assert remove.parent() is not ok.parent()
        right = remove.mapTo(form, remove.rect().topRight()).x()
        assert right + 40 < min(
            ok.mapTo(form, ok.rect().topLeft()).x(), cancel.mapTo(form, cancel.rect().topLeft()).x()
        )
        click(qtbot, remove)

    with_form(qtbot, window, remove)
    assert "sweep" not in doc.data and window.tabs.tabText(0) == "Plan"
    window.undo_stack.undo()
    assert "sweep" in doc.data and window.tabs.tabText(0) == "Plan · sweep"


def test_a_distribution_the_fields_cannot_say_stays_as_yaml(qtbot, window):
    from app.qt.editor.undo import SetPlanValue

    space = {
        "stages.sentiment.batch_size": {"int": [16, 64], "step": 16},
        "stages.sentiment.schedule.name": {"choice": ["linear", "cosine"]},
        "stages.sentiment.seed": {"choice": [[1, 2]]},  # a list as one choice: YAML
    }
    sweep = {**default_sweep(window.doc.data), "space": space}
    window.undo_stack.push(SetPlanValue(window.doc, "sweep", sweep))

    def check(form):
        kinds = [r.kind_box.currentData() for r in form.rows]
        assert kinds == ["int", "choice", "yaml"]
        assert form.rows[0].step_field.text() == "16"
        assert form.rows[1].choices_field.text() == "linear, cosine"
        assert form.rows[2].choices_field.text() == "{choice: [[1, 2]]}"
        assert form.rows[1].kind_box.findData("yaml") < 0  # offered only where needed
        click(qtbot, form.ok_button)

    with_form(qtbot, window, check)
    assert window.doc.data["sweep"]["space"] == space
