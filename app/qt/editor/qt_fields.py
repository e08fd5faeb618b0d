"""Editors for single settings, made from the schema's field descriptions. Each editor
shows a value (or the default, greyed, when the plan leaves it out), reports edits as
plain values (UNSET: back to the default) and shows its problems inline."""

from __future__ import annotations

from typing import Any

import yaml
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model.plan_document import UNSET
from app.model.schema_fields import FieldSpec, format_value, parse_number
from app.qt.editor.qt_setting_boxes import narrow_combo
from app.qt.qt_look import PROBLEM_COLOR, in_problem_color


class FieldEditor(QWidget):
    """One setting: its input, a reset button and an inline problem line."""

    edited = Signal(object)  # the new value, or UNSET

    def __init__(self, spec: FieldSpec, parent=None):
        super().__init__(parent)
        self.spec = spec
        self.setObjectName(f"field_{spec.key}")
        # The reset button and the problem line are made when first shown: most settings
        # keep their default and have no problem, and the inspector's ~80 hidden ones were
        # ~10 % of building its form at every start.
        self._reset_button: QToolButton | None = None
        self._problem_line: QLabel | None = None
        self.input = self._make_input()
        self.input.setAccessibleName(spec.label)
        tip = spec.help + (f" Allowed: {spec.range_text()}." if spec.range_text() else "")
        self.input.setToolTip(tip)
        self._row = row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.input, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)

    @property
    def _reset(self) -> QToolButton:
        """The button beside the input that sets the default again."""
        if self._reset_button is None:
            self._reset_button = QToolButton()
            self._reset_button.setText("↺")
            self._reset_button.setToolTip("Back to the default")
            self._reset_button.setAutoRaise(True)
            self._reset_button.clicked.connect(lambda: self.edited.emit(UNSET))
            self._row.addWidget(self._reset_button)
        return self._reset_button

    @property
    def _problem(self) -> QLabel:
        """The problem line under the input."""
        if self._problem_line is None:
            self._problem_line = QLabel()
            self._problem_line.setWordWrap(True)
            in_problem_color(self._problem_line)
            self._problem_line.hide()
            self.layout().addWidget(self._problem_line)
        return self._problem_line

    def show_value(self, value: Any, default: Any = None) -> None:
        """Show the plan's value (UNSET: the default; `default` when the stage's default
        differs from the schema's, as eval metrics follow the task)."""
        if value is not UNSET or self._reset_button is not None:
            self._reset.setVisible(value is not UNSET)
        self.input.blockSignals(True)
        shown = self.spec.default if default is None else default
        try:
            self._show(shown if value is UNSET else value, value is UNSET)
        finally:
            self.input.blockSignals(False)

    def show_problem(self, text: str) -> None:
        """Show problems of this setting under it ('' hides them)."""
        if text or self._problem_line is not None:
            self._problem.setText(text)
            self._problem.setVisible(bool(text))
        self.input.setProperty("invalid", bool(text))
        if text or self.input.styleSheet():  # an empty one still costs the input a style
            self.input.setStyleSheet(f"border: 1px solid {PROBLEM_COLOR.name()};" if text else "")

    # subclasses
    def _make_input(self) -> QWidget:
        raise NotImplementedError

    def _show(self, value: Any, is_default: bool) -> None:
        raise NotImplementedError


class TextEditor(FieldEditor):
    """Numbers and text typed in a line; empty means the default, 'none' means no value.
    Numbers out of range or words in a number field are kept and reported, not lost."""

    def _make_input(self) -> QWidget:
        line = QLineEdit()
        line.editingFinished.connect(self._finished)
        return line

    def _show(self, value: Any, is_default: bool) -> None:
        default = self.spec.default
        hint = self.spec.empty or ("none" if default is None else format_value(default))
        self.input.setPlaceholderText(f"default: {hint}" if not self.spec.required else "required")
        if is_default:
            self.input.setText("")
        elif isinstance(value, list):
            self.input.setText(", ".join(str(v) for v in value))
        else:
            self.input.setText("none" if value is None else format_value(value))
        self.input.setCursorPosition(0)  # long texts show their beginning, not their end

    def _finished(self) -> None:
        text = self.input.text().strip()
        if not text:
            value: Any = UNSET
        elif text.lower() == "none" and self.spec.optional:
            value = None
        elif self.spec.kind in ("int", "float"):
            value = parse_number(text, self.spec.kind)
        elif self.spec.kind == "words":
            value = [w.strip() for w in text.split(",") if w.strip()]
        elif self.spec.kind == "pair":
            value = [parse_number(w, "float") for w in text.split(",")]
        else:
            value = text
        self.edited.emit(value)


class ChoiceEditor(FieldEditor):
    """One of the schema's choices."""

    def _make_input(self) -> QWidget:
        combo = narrow_combo(QComboBox())
        combo.addItems([str(c) for c in self.spec.choices])
        combo.activated.connect(lambda i: self.edited.emit(self.spec.choices[i]))
        return combo

    def _show(self, value: Any, is_default: bool) -> None:
        if value not in self.spec.choices:
            self.input.setCurrentIndex(-1)
            self.input.setPlaceholderText(str(value))
            return
        self.input.setCurrentIndex(self.spec.choices.index(value))


class BoolEditor(FieldEditor):
    """On or off."""

    def _make_input(self) -> QWidget:
        box = QCheckBox()
        box.toggled.connect(lambda on: self.edited.emit(bool(on)))
        return box

    def _show(self, value: Any, is_default: bool) -> None:
        self.input.setChecked(bool(value))


class MetricsEditor(FieldEditor):
    """Several of the known eval metrics."""

    def _make_input(self) -> QWidget:
        box = QWidget()
        self._grid = QGridLayout(box)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._boxes = {}
        for name in self.spec.choices:
            check = QCheckBox(name.replace("_", " "))
            check.toggled.connect(self._toggled)
            self._boxes[name] = check
        self.offer(self.spec.choices)
        return box

    def offer(self, names: tuple[str, ...] | list[str]) -> None:
        """Offer only these metrics (those of the stage's task), in two columns that fit a
        narrow inspector; the others are hidden."""
        for check in self._boxes.values():
            self._grid.removeWidget(check)
            check.hide()
        for i, name in enumerate(n for n in self._boxes if n in names):
            self._grid.addWidget(self._boxes[name], i // 2, i % 2)
            self._boxes[name].show()

    def offered(self) -> list[str]:
        """The metrics offered now (those of the stage's task)."""
        return [n for n, check in self._boxes.items() if not check.isHidden()]

    def _show(self, value: Any, is_default: bool) -> None:
        chosen = {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()
        for name, check in self._boxes.items():
            check.blockSignals(True)
            check.setChecked(name in chosen)
            check.blockSignals(False)

    def _toggled(self) -> None:
        self.edited.emit(
            [n for n, check in self._boxes.items() if check.isChecked() and not check.isHidden()]
        )


class YamlEditor(FieldEditor):
    """Anything else (lists of members …) as a small YAML text, applied on focus out."""

    def _make_input(self) -> QWidget:
        text = _FocusOutText()
        text.setFixedHeight(90)
        text.focus_out.connect(self._finished)
        return text

    def _show(self, value: Any, is_default: bool) -> None:
        self.input.setPlainText("" if value is None else yaml.safe_dump(value, sort_keys=False))

    def _finished(self) -> None:
        try:
            value = yaml.safe_load(self.input.toPlainText())
        except yaml.YAMLError as exc:
            self.show_problem(f"not valid YAML ({getattr(exc, 'problem', exc)}); fix the text")
            return
        self.edited.emit(UNSET if value is None else value)


class _FocusOutText(QPlainTextEdit):
    focus_out = Signal()

    def focusOutEvent(self, event) -> None:  # noqa: N802
        super().focusOutEvent(event)
        self.focus_out.emit()


def make_editor(spec: FieldSpec, parent=None) -> FieldEditor:
    """The editor for a setting of any kind but 'group'."""
    cls = {
        "choice": ChoiceEditor,
        "bool": BoolEditor,
        "metrics": MetricsEditor,
        "yaml": YamlEditor,
    }.get(spec.kind, TextEditor)
    editor = cls(spec, parent)
    editor.input.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    return editor
