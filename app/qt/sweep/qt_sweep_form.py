"""Adding a sweep to the plan in the editor: a small form for the sweep section (objective,
budget, sampler, and the space: one row per setting, `qt_sweep_space.py`) and what
"Sweep this setting" on the inspector's field labels does (the menu: `qt_sweep_menu.py`).
Each change is one undoable plan edit (`SetPlanValue`); the plan's validation lists the
section's problems like any other."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.model.plan_document import UNSET, PlanDocument
from app.model.schema_fields import FieldSpec
from app.model.sweep_edit import (
    default_sweep,
    suggested_distribution,
    sweep_with_setting,
    sweepable_settings,
)
from app.qt.editor.undo import SetPlanValue
from app.qt.sweep.qt_sweep_space import QtSweepSpace
from engine.spec.eval_metrics import raw_eval_metrics


class QtSweepForm(QDialog):
    """Edits a copy of the plan's sweep section; `result_sweep` is the new section (or
    UNSET when "Remove sweep" was pressed)."""

    def __init__(self, doc: PlanDocument, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sweepForm")
        self.setWindowTitle("Sweep")
        self.doc = doc
        sweep = doc.data.get("sweep") or default_sweep(doc.data)
        self.result_sweep: Any = sweep
        objective = sweep.get("objective", {})
        budget = sweep.get("budget", {})

        self.stage_box = QComboBox()
        self.stage_box.addItems(doc.stage_names())
        self.stage_box.setCurrentText(str(objective.get("stage", "")))
        self.metric_box = QComboBox()
        self.metric_box.setEditable(True)
        self.stage_box.currentTextChanged.connect(self._fill_metrics)
        self._fill_metrics(self.stage_box.currentText())
        self.metric_box.setCurrentText(str(objective.get("metric", "accuracy")))
        self.goal_box = QComboBox()
        self.goal_box.addItems(["max", "min"])
        self.goal_box.setCurrentText(objective.get("goal", "max"))
        target = objective.get("target")
        self.target_field = QLineEdit("" if target is None else str(target))
        self.target_field.setPlaceholderText("none: run the whole budget")
        self.trials_box = QSpinBox()
        self.trials_box.setRange(1, 10_000)
        self.trials_box.setValue(int(budget.get("trials", 10)))  # the engine's default
        self.minutes_box = QDoubleSpinBox()
        self.minutes_box.setRange(0, 100_000)
        self.minutes_box.setSpecialValueText("no limit")
        self.minutes_box.setValue(float(budget.get("minutes") or 0))
        self.sampler_box = QComboBox()
        self.sampler_box.addItems(["tpe", "random", "grid"])
        self.sampler_box.setCurrentText(sweep.get("sampler", "tpe"))

        self.space_editor = QtSweepSpace(
            doc,
            list(sweepable_settings(doc.data)),
            sweep.get("space") or {},
            self.stage_box.currentText,
        )
        self.rows = self.space_editor.rows  # the same list, kept as rows change
        self.add_setting_button = self.space_editor.add_setting_button
        self.remove_setting_button = self.space_editor.remove_setting_button

        form = QFormLayout()
        form.addRow("Objective stage", self.stage_box)
        form.addRow("Metric", self.metric_box)
        form.addRow("Goal", self.goal_box)
        form.addRow("Target", self.target_field)
        form.addRow("Trials", self.trials_box)
        form.addRow("Time limit (minutes)", self.minutes_box)
        form.addRow("Sampler", self.sampler_box)
        hint = QLabel(
            "Each setting takes a range (log-uniform for rates, uniform, int with an "
            "optional step) or a list of choices. Settings can also be added with a right "
            "click on a setting's name in Stage settings."
        )
        hint.setWordWrap(True)

        # "Remove sweep" stands apart on the left, away from OK and Cancel.
        self.remove_button = QPushButton("Remove sweep")
        self.remove_button.setObjectName("removeSweep")
        self.remove_button.setToolTip(
            "Take the sweep section out of the plan (undo brings it back)"
        )
        self.remove_button.setEnabled("sweep" in doc.data)
        self.remove_button.clicked.connect(self._remove)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        bottom = QHBoxLayout()
        bottom.addWidget(self.remove_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Space"))
        layout.addWidget(self.space_editor, 1)
        layout.addWidget(hint)
        layout.addLayout(bottom)
        self.resize(860, 560)

    def _fill_metrics(self, stage_name: str) -> None:
        metrics = ["loss"]
        for stage in self.doc.stages:
            if stage.get("name") == stage_name:
                # Those the stage records: listed, else its task's defaults (as validated).
                metrics = raw_eval_metrics(stage) or ["loss"]
        current = self.metric_box.currentText()
        self.metric_box.clear()
        self.metric_box.addItems([m for m in metrics if m != "confusion_matrix"])
        if current:
            self.metric_box.setCurrentText(current)

    def _remove(self) -> None:
        self.result_sweep = UNSET
        self.accept()

    def sweep(self) -> dict[str, Any]:
        """The section as the form shows it (values that are not numbers are kept as text,
        so validation names them)."""
        objective: dict[str, Any] = {
            "stage": self.stage_box.currentText(),
            "metric": self.metric_box.currentText(),
            "goal": self.goal_box.currentText(),
        }
        if self.target_field.text().strip():
            try:
                objective["target"] = float(self.target_field.text())
            except ValueError:
                objective["target"] = self.target_field.text()
        budget: dict[str, Any] = {"trials": self.trials_box.value()}
        if self.minutes_box.value() > 0:
            budget["minutes"] = self.minutes_box.value()
        sweep = dict(self.doc.data.get("sweep") or {})
        sweep.update(
            {"objective": objective, "budget": budget, "sampler": self.sampler_box.currentText()}
        )
        sweep["space"] = self.space_editor.space()
        return sweep

    def accept(self) -> None:
        if self.result_sweep is not UNSET:
            self.result_sweep = self.sweep()
        super().accept()


def edit_sweep(doc: PlanDocument, undo_stack: Any, parent: QWidget | None = None) -> bool:
    """Open the form; an accepted change is pushed as one undoable plan edit."""
    form = QtSweepForm(doc, parent)
    if form.exec() != QDialog.DialogCode.Accepted:
        return False
    undo_stack.push(SetPlanValue(doc, "sweep", form.result_sweep))
    return True


def sweep_setting(inspector: Any, keys: tuple[str, ...], spec: FieldSpec) -> None:
    """Add a setting of the inspector's stage to the plan's sweep (made if missing), with a
    range around its value; one undoable edit."""
    doc, index = inspector.doc, inspector.index
    if index is None or index < 0:
        return
    dist = suggested_distribution(
        spec.kind,
        doc.value(index, keys),
        default=spec.default,
        choices=spec.choices,
        minimum=spec.minimum,
        maximum=spec.maximum,
    )
    inspector.undo_stack.push(
        SetPlanValue(doc, "sweep", sweep_with_setting(doc.data, index, keys, dist))
    )
