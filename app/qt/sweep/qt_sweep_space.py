"""The space of the sweep form (`QtSweepSpace`): one table row per swept setting, with its
distribution and the fields that distribution uses (low, high, step, choices), rows added
around a setting's value and removed; `space()` is the section's `space` as shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from app.model.plan_document import PlanDocument
from app.model.sweep_edit import distribution_fields, distribution_from_fields, suggested_for

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


class QtSweepSpace(QWidget):
    """The space's table and its Add / Remove setting buttons."""

    def __init__(
        self,
        doc: PlanDocument,
        settings: list[str],
        space: dict[str, Any],
        stage_name: Callable[[], str],
        parent: QWidget | None = None,
    ):
        """`settings`: the paths offered; `space`: the rows to start with; `stage_name`:
        the objective's stage, whose settings Add setting offers first."""
        super().__init__(parent)
        self.doc = doc
        self._settings = settings
        self._stage_name = stage_name
        self.rows: list[_SpaceRow] = []
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
        for path, dist in space.items():
            self._add_row(path, dist)

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_setting_button)
        buttons.addWidget(self.remove_setting_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.space_table, 1)
        layout.addLayout(buttons)
        self._update_buttons()

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
        stage = self._stage_name()
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

    def space(self) -> dict[str, Any]:
        """The space as the rows show it (rows without a setting left out)."""
        space: dict[str, Any] = {}
        for row in self.rows:
            path = row.setting_box.currentText().strip()
            if path:
                space[path] = row.value()
        return space
