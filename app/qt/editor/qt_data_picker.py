"""Picker for a stage's data: a local file (with a preview of its first rows and the
columns to map) or a Hub data set name."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model.data_files import preview, rows_line
from app.model.plan_document import UNSET
from app.qt.editor.qt_setting_boxes import narrow_combo, narrow_form
from app.qt.qt_look import PROBLEM_COLOR, in_problem_color

FILE_FILTER = "Data files (*.csv *.tsv *.json *.jsonl *.parquet *.txt);;All files (*)"


class QtDataPicker(QWidget):
    """Edits where the data is and which columns hold text and labels. Other data
    settings (splits, lengths) are plain schema fields below it in the inspector."""

    value_edited = Signal(str, object)  # data key, new value (or UNSET)
    replaced = Signal(dict)  # the whole data mapping (switching file ↔ Hub)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._value: dict[str, Any] = {}
        self._stage: dict[str, Any] = {}
        self.warning = ""  # a hint about the rows and the stage's settings, '' if none
        self.plan_dir = Path(".")
        self.source = narrow_combo(QComboBox())
        self.source.addItems(["Local file or folder", "Hugging Face Hub data set"])
        self.source.setAccessibleName("Data source")
        self.source.activated.connect(self._source_chosen)
        self.path = QLineEdit()
        self.path.setAccessibleName("Data file")
        self.path.setPlaceholderText("CSV, JSON, JSONL, Parquet or text file")
        self.path.editingFinished.connect(lambda: self._set("path", self.path.text().strip()))
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        self.hub = QLineEdit()
        self.hub.setPlaceholderText("e.g. imdb")
        self.hub.editingFinished.connect(lambda: self._set("hub", self.hub.text().strip()))
        self.text_column = _column_combo("Text column")
        self.text_column.activated.connect(
            lambda _: self._set("text_column", self.text_column.currentText())
        )
        self.label_column = _column_combo("Label column")
        self.label_column.activated.connect(
            lambda _: self._set("label_column", self.label_column.currentText())
        )
        self.rows = QLabel()
        self.rows.setObjectName("dataRows")
        self.rows.setWordWrap(True)
        self.rows.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget()
        self.table.setObjectName("dataPreview")
        self.table.setAccessibleName("Data preview")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFixedHeight(150)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        in_problem_color(self.problem)
        self.problem.hide()

        file_row = QWidget()
        row = QHBoxLayout(file_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        self.form = narrow_form(QFormLayout())
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.addRow("Source", self.source)
        self.form.addRow("File", file_row)
        self.form.addRow("Data set", self.hub)
        self.form.addRow("Text column", self.text_column)
        self.form.addRow("Label column", self.label_column)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.form)
        layout.addWidget(self.problem)
        layout.addWidget(self.rows)
        layout.addWidget(self.table)

    def show_value(
        self,
        value: Any,
        plan_dir: Path,
        labelled: bool = True,
        text: bool = True,
        stage: dict[str, Any] | None = None,
    ) -> None:
        """Show a data setting and, for a local file, its first rows. `labelled` and
        `text`: whether the stage reads a label column (not self-supervised stages) and a
        text column (not preference stages); `stage`: the raw stage, whose kind, task and
        batch size the rows line speaks of."""
        self.form.setRowVisible(3, text)
        self.form.setRowVisible(4, labelled)
        self._stage = stage if isinstance(stage, dict) else {"data": value}
        self._value = dict(value) if isinstance(value, dict) else {}
        self.plan_dir = plan_dir
        on_hub = bool(self._value.get("hub"))
        self.source.setCurrentIndex(1 if on_hub else 0)
        self.form.setRowVisible(1, not on_hub)
        self.form.setRowVisible(2, on_hub)
        self.path.setText(str(self._value.get("path") or ""))
        self.hub.setText(str(self._value.get("hub") or ""))
        columns: list[str] = []
        if not on_hub and self._value.get("path"):
            columns = self._show_preview()
        else:
            self.table.hide()
            self._rows_text("Rows are counted when the run loads the data set." if on_hub else "")
        for combo, key, default in (
            (self.text_column, "text_column", "text"),
            (self.label_column, "label_column", "label"),
        ):
            combo.clear()
            combo.addItems(columns)
            combo.setCurrentText(str(self._value.get(key) or default))

    def show_problem(self, text: str) -> None:
        """Problems of the data setting ('' hides them)."""
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    def _show_preview(self) -> list[str]:
        path = Path(str(self._value["path"])).expanduser()
        seen = preview(
            path if path.is_absolute() else self.plan_dir / path,
            str(self._value.get("format") or "auto"),
        )
        if seen.error:
            self.table.hide()
            self._rows_text("")
            return []
        self.table.show()
        self.table.setColumnCount(len(seen.columns))
        self.table.setHorizontalHeaderLabels(seen.columns)
        self.table.setRowCount(len(seen.rows))
        for r, record in enumerate(seen.rows):
            for c, column in enumerate(seen.columns):
                self.table.setItem(r, c, QTableWidgetItem(str(record.get(column, ""))))
        line = rows_line({**self._stage, "data": self._value}, seen)
        self._rows_text(line.text, line.warning)
        return seen.columns

    def _rows_text(self, text: str, warning: str = "") -> None:
        """The rows line, with a warning (in the problem colour) under it."""
        self.warning = warning
        text = escape(text, quote=False)
        if warning:
            text += f"<br><span style='color: {PROBLEM_COLOR.name()}'>⚠ {escape(warning, quote=False)}</span>"
        self.rows.setText(text)

    def _set(self, key: str, value: Any) -> None:
        value = value if value != "" else UNSET
        if self._value.get(key, UNSET) != value:
            self.value_edited.emit(key, value)

    def _source_chosen(self, index: int) -> None:
        keep = {
            k: v for k, v in self._value.items() if k not in ("path", "hub", "hub_config", "format")
        }
        if index == 0 and not self._value.get("path"):
            self.replaced.emit({"path": "", **keep})
        elif index == 1 and not self._value.get("hub"):
            self.replaced.emit({"hub": "", **keep})

    def _browse(self) -> None:
        start = str(self.plan_dir)
        name, _ = QFileDialog.getOpenFileName(self, "Data file", start, FILE_FILTER)
        if name:
            try:
                name = Path(name).relative_to(self.plan_dir).as_posix()
            except ValueError:
                pass
            self.path.setText(name)
            self._set("path", name)


def _column_combo(name: str) -> QComboBox:
    combo = narrow_combo(QComboBox())
    combo.setEditable(True)
    combo.setAccessibleName(name)
    return combo
