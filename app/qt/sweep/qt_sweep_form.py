"""Adding a sweep to the plan in the editor: a small form for the sweep section (objective,
budget, sampler, and the space as one row per setting with fields per distribution) and
"Sweep this setting" on the inspector's field labels. Each change is one undoable plan edit
(`SetPlanValue`); the plan's validation lists the section's problems like any other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from app.model.plan_document import UNSET, PlanDocument
from app.model.schema_fields import FieldSpec
from app.model.sweep_edit import (
    SWEEPABLE_KINDS,
    default_sweep,
    distribution_fields,
    distribution_from_fields,
    suggested_distribution,
    suggested_for,
    sweep_with_setting,
    sweepable_settings,
)
from app.qt.editor.undo import SetPlanValue
from engine.spec.eval_metrics import raw_eval_metrics

# The distribution combo: shown name, key in the plan. "YAML" is offered only for a row
# whose distribution the fields cannot say (written by hand in the plan file).
KINDS = (
    ("log-uniform", "log_uniform"),
    ("uniform", "uniform"),
    ("int", "int"),
    ("log-int", "log_int"),
    ("choice", "choice"),
)
YAML_KIND = "yaml"
COLUMNS = ("setting", "distribution", "low", "high", "step", "choices")
SETTING, KIND, LOW, HIGH, STEP, CHOICES = range(len(COLUMNS))


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


@dataclass
class _SpaceRow:
    """The editors of one row of the space (cell widgets of the table)."""

    setting_box: QComboBox
    kind_box: QComboBox
    low_field: QLineEdit
    high_field: QLineEdit
    step_field: QLineEdit
    choices_field: QLineEdit

    def value(self) -> Any:
        kind = self.kind_box.currentData()
        if kind == YAML_KIND:
            try:
                return yaml.safe_load(self.choices_field.text())
            except yaml.YAMLError:
                return self.choices_field.text()  # validation names it
        return distribution_from_fields(
            kind,
            self.low_field.text(),
            self.high_field.text(),
            self.step_field.text(),
            self.choices_field.text(),
        )

    def show_kind(self) -> None:
        """Only the fields the distribution uses are enabled."""
        kind = self.kind_box.currentData()
        ranged = kind not in ("choice", YAML_KIND)
        self.low_field.setEnabled(ranged)
        self.high_field.setEnabled(ranged)
        self.step_field.setEnabled(kind == "int")
        self.choices_field.setEnabled(not ranged)
        self.choices_field.setPlaceholderText(
            "{choice: [a, b]}"
            if kind == YAML_KIND
            else "values, comma-separated"
            if not ranged
            else ""
        )
        self.step_field.setPlaceholderText("1" if kind == "int" else "")


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
        self._settings = list(sweepable_settings(doc.data))
        self.rows: list[_SpaceRow] = []

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

        self.space_table = QTableWidget(0, len(COLUMNS))
        self.space_table.setObjectName("sweepSpace")
        self.space_table.setHorizontalHeaderLabels(list(COLUMNS))
        header = self.space_table.horizontalHeader()
        # The path gets the room; numbers are short, choices a short list.
        header.setSectionResizeMode(SETTING, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(KIND, QHeaderView.ResizeMode.ResizeToContents)
        for column, width in ((LOW, 80), (HIGH, 80), (STEP, 50), (CHOICES, 150)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            self.space_table.setColumnWidth(column, width)
        self.space_table.verticalHeader().setVisible(False)
        self.space_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.space_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.add_setting_button = QPushButton("Add setting")
        self.add_setting_button.setObjectName("addSweepSetting")
        self.add_setting_button.setToolTip(
            "Add a setting of the objective's stage to the space, with a range around its value"
        )
        self.add_setting_button.clicked.connect(self.add_setting)
        self.remove_setting_button = QPushButton("Remove setting")
        self.remove_setting_button.setObjectName("removeSweepSetting")
        self.remove_setting_button.clicked.connect(self.remove_setting)
        self.space_table.itemSelectionChanged.connect(self._update_buttons)
        for path, dist in (sweep.get("space") or {}).items():
            self._add_row(path, dist)

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
        space_buttons = QHBoxLayout()
        space_buttons.addWidget(self.add_setting_button)
        space_buttons.addWidget(self.remove_setting_button)
        space_buttons.addStretch(1)

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
        layout.addWidget(self.space_table, 1)
        layout.addLayout(space_buttons)
        layout.addWidget(hint)
        layout.addLayout(bottom)
        self.resize(860, 560)
        self._update_buttons()

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

    # -- the space ----------------------------------------------------------------------------

    def _add_row(self, path: str, dist: Any) -> _SpaceRow:
        """A row for one setting; a distribution the fields cannot say shows as YAML."""
        index = self.space_table.rowCount()
        self.space_table.insertRow(index)
        setting_box = QComboBox()
        setting_box.setEditable(True)
        setting_box.addItems(self._settings)
        setting_box.setCurrentText(path)
        setting_box.setToolTip("stages.<stage>.<setting>: any setting of the plan")
        kind_box = QComboBox()
        for label, key in KINDS:
            kind_box.addItem(label, key)
        row = _SpaceRow(setting_box, kind_box, QLineEdit(), QLineEdit(), QLineEdit(), QLineEdit())
        self._show_distribution(row, dist)
        kind_box.currentIndexChanged.connect(lambda _: self._kind_changed(row))
        setting_box.activated.connect(lambda _: self._setting_picked(row))
        widgets = (setting_box, kind_box, row.low_field, row.high_field, row.step_field)
        for column, widget in enumerate((*widgets, row.choices_field)):
            self.space_table.setCellWidget(index, column, widget)
        for field in (row.low_field, row.high_field, row.step_field, row.choices_field):
            field.textEdited.connect(lambda _, r=row: self._select(r))
        self.rows.append(row)
        self._update_buttons()
        return row

    def _show_distribution(self, row: _SpaceRow, dist: Any) -> None:
        fields = distribution_fields(dist)
        row.kind_box.blockSignals(True)
        if fields is None:
            if row.kind_box.findData(YAML_KIND) < 0:
                row.kind_box.addItem("YAML", YAML_KIND)
            row.kind_box.setCurrentIndex(row.kind_box.findData(YAML_KIND))
            fields = {"low": "", "high": "", "step": "", "choices": _flow(dist)}
        else:
            row.kind_box.setCurrentIndex(row.kind_box.findData(fields["kind"]))
        row.kind_box.blockSignals(False)
        row.low_field.setText(fields["low"])
        row.high_field.setText(fields["high"])
        row.step_field.setText(fields["step"])
        row.choices_field.setText(fields["choices"])
        row.show_kind()

    def _kind_changed(self, row: _SpaceRow) -> None:
        """Another distribution: keep what still fits (a range's ends), else start from
        the setting's suggested values."""
        self._select(row)
        kind = row.kind_box.currentData()
        path = row.setting_box.currentText().strip()
        suggested = suggested_for(self.doc.data, path) or {}
        if kind == "choice" and not row.choices_field.text().strip():
            choices = suggested.get("choice")
            if choices is None and row.low_field.text() and row.high_field.text():
                choices = [row.low_field.text(), row.high_field.text()]
            row.choices_field.setText(", ".join(str(c) for c in choices or []))
        elif kind != "choice" and not (row.low_field.text() and row.high_field.text()):
            ends = next((v for k, v in suggested.items() if k != "choice"), None)
            if ends is not None:
                row.low_field.setText(repr(ends[0]))
                row.high_field.setText(repr(ends[1]))
        row.show_kind()

    def _setting_picked(self, row: _SpaceRow) -> None:
        """A setting chosen from the list starts with a range around its value."""
        self._select(row)
        suggested = suggested_for(self.doc.data, row.setting_box.currentText().strip())
        if suggested is not None:
            self._show_distribution(row, suggested)

    def _select(self, row: _SpaceRow) -> None:
        if row in self.rows:
            self.space_table.selectRow(self.rows.index(row))

    def add_setting(self) -> None:
        """A new row: the first setting of the objective's stage not in the space yet
        (its learning rate, when it has one), with a range around its value."""
        taken = {r.setting_box.currentText().strip() for r in self.rows}
        stage = self.stage_box.currentText()
        prefix = f"stages.{stage}."
        preferred = [f"{prefix}optimizer.lr", f"{prefix}optimizer.weight_decay", f"{prefix}seed"]
        mine = [p for p in self._settings if p.startswith(prefix)]
        path = next((p for p in preferred + mine if p in self._settings and p not in taken), "")
        row = self._add_row(path, suggested_for(self.doc.data, path) or {"choice": []})
        self._select(row)
        row.setting_box.setFocus()

    def remove_setting(self) -> None:
        """Remove the selected row (the last one when none is selected)."""
        selected = self.space_table.selectionModel().selectedRows()
        index = selected[0].row() if selected else len(self.rows) - 1
        if 0 <= index < len(self.rows):
            self.space_table.removeRow(index)
            del self.rows[index]
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_setting_button.setEnabled(bool(self.rows))

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
        space: dict[str, Any] = {}
        for row in self.rows:
            path = row.setting_box.currentText().strip()
            if path:
                space[path] = row.value()
        sweep = dict(self.doc.data.get("sweep") or {})
        sweep.update(
            {"objective": objective, "budget": budget, "sampler": self.sampler_box.currentText()}
        )
        sweep["space"] = space
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


def add_sweep_menu(inspector: Any, widget: QWidget, keys: tuple[str, ...], spec: FieldSpec) -> None:
    """ "Sweep this setting" in the context menu of a field's label in the inspector."""
    if spec.kind not in SWEEPABLE_KINDS:
        return
    widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show_menu(pos) -> None:
        menu = QMenu(widget)
        action = menu.addAction("Sweep this setting")
        action.setObjectName("sweepThisSetting")
        action.triggered.connect(lambda: sweep_setting(inspector, keys, spec))
        menu.exec(widget.mapToGlobal(pos))

    widget.customContextMenuRequested.connect(show_menu)
    widget.setToolTip(f"{widget.toolTip()}\nRight click: sweep this setting".strip())


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
