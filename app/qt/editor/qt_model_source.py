"""Picker for where a stage's model comes from: a built-in size trained from scratch, a
Hub id, a local folder, or the output of an earlier stage (of a joint stage: one
member's model, chosen in a second list)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.qt.editor.qt_setting_boxes import narrow_combo, narrow_form
from app.qt.qt_look import in_problem_color
from engine.spec.settings import BUILTIN_ARCHITECTURES, BUILTIN_SIZES

SOURCES = (
    ("from_stage", "Output of an earlier stage"),
    ("builtin", "Built-in model (new, trained from scratch)"),
    ("hub", "Hugging Face Hub"),
    ("path", "Local folder"),
)
BUILTINS = [f"{a}-{s}" for a in BUILTIN_ARCHITECTURES for s in BUILTIN_SIZES]


class QtModelSource(QWidget):
    """Edits a `model` (or `teacher`) setting as a whole; emits the new mapping."""

    edited = Signal(dict)

    def __init__(self, label: str, parent=None):
        super().__init__(parent)
        self._value: dict[str, Any] = {}
        self._earlier: list[str] = []
        self._joint: dict[str, list[str]] = {}
        self.source = narrow_combo(QComboBox())
        self.source.setAccessibleName(f"{label} source")
        for _, text in SOURCES:
            self.source.addItem(text)
        self.source.activated.connect(self._source_chosen)
        self.pages = _Pages()

        self.stage = narrow_combo(QComboBox())
        self.stage.setAccessibleName("Earlier stage")
        self.stage.activated.connect(lambda _: self._stage_chosen(self.stage.currentText()))
        self.member = narrow_combo(QComboBox())
        self.member.setObjectName("memberChoice")
        self.member.setAccessibleName("Member of the joint stage")
        self.member.setToolTip("A joint stage trains a model per member: the one to take.")
        self.member.activated.connect(
            lambda _: self._emit(
                from_stage=self.stage.currentText(), member=self.member.currentText()
            )
        )
        self.builtin = narrow_combo(QComboBox())
        self.builtin.addItems(BUILTINS)
        self.builtin.setAccessibleName("Built-in model")
        self.builtin.activated.connect(lambda _: self._emit(builtin=self.builtin.currentText()))
        self.vocab = QLineEdit()
        self.vocab.setPlaceholderText("default: 4000")
        self.vocab.setToolTip("Vocabulary of the tokenizer trained on this stage's data.")
        self.vocab.editingFinished.connect(self._vocab_done)
        self.hub = QLineEdit()
        self.hub.setPlaceholderText("e.g. bert-base-uncased")
        self.hub.editingFinished.connect(lambda: self._emit(hub=self.hub.text().strip()))
        self.revision = QLineEdit()
        self.revision.setPlaceholderText("main")
        self.revision.editingFinished.connect(self._revision_done)
        self.path = QLineEdit()
        self.path.setPlaceholderText("folder saved with save_pretrained")
        self.path.editingFinished.connect(lambda: self._emit(path=self.path.text().strip()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.plan_dir = "."

        stage_page = _form(("Stage", self.stage), ("Member", self.member))
        self._stage_form: QFormLayout = stage_page.layout()
        self.pages.addWidget(stage_page)
        self.pages.addWidget(_form(("Model", self.builtin), ("Vocabulary", self.vocab)))
        self.pages.addWidget(_form(("Model id", self.hub), ("Revision", self.revision)))
        folder = QWidget()
        row = QHBoxLayout(folder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.pages.addWidget(_form(("Folder", folder)))
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        in_problem_color(self.problem)
        self.problem.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.source)
        layout.addWidget(self.pages)
        layout.addWidget(self.problem)

    def take_teacher_vocabulary(self) -> None:
        """A distill student: a built-in one reads the teacher's token ids, so it takes the
        teacher's tokenizer and its own vocabulary setting would be ignored."""
        self.vocab.setEnabled(False)
        self.vocab.setPlaceholderText("the teacher's")
        self.vocab.setToolTip(
            "A built-in student takes the teacher's tokenizer: both models must read the same "
            "token ids."
        )

    def show_value(
        self,
        value: Any,
        earlier_stages: list[str],
        plan_dir: str,
        joint_members: dict[str, list[str]] | None = None,
    ) -> None:
        """Show a model setting; `earlier_stages` are the names it may start from, and
        `joint_members` the member names of those that are joint stages."""
        self._value = dict(value) if isinstance(value, dict) else {}
        self._earlier, self.plan_dir = earlier_stages, plan_dir
        self._joint = dict(joint_members or {})
        kind = next((k for k, _ in SOURCES if self._value.get(k) is not None), "builtin")
        self.source.setCurrentIndex([k for k, _ in SOURCES].index(kind))
        self.pages.setCurrentIndex(self.source.currentIndex())
        self.stage.clear()
        self.stage.addItems(earlier_stages)
        ref = self._value.get("from_stage")
        if ref and ref not in earlier_stages:  # show what the plan says, even if wrong
            self.stage.addItem(str(ref))
        self.stage.setCurrentText(str(ref or ""))
        members = list(self._joint.get(str(ref), []))
        chosen = self._value.get("member")
        if chosen is not None and str(chosen) not in members:  # what the plan says, even if wrong
            members.append(str(chosen))
        self.member.clear()
        self.member.addItems(members)
        self.member.setCurrentIndex(members.index(str(chosen)) if chosen is not None else -1)
        self._stage_form.setRowVisible(1, bool(members))
        self.builtin.setCurrentText(str(self._value.get("builtin") or "bert-tiny"))
        vocab = self._value.get("vocab_size")
        self.vocab.setText("" if vocab is None else str(vocab))
        self.hub.setText(str(self._value.get("hub") or ""))
        self.revision.setText(str(self._value.get("revision") or ""))
        self.path.setText(str(self._value.get("path") or ""))

    def show_problem(self, text: str) -> None:
        """Problems of the model setting ('' hides them)."""
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    def _source_chosen(self, index: int) -> None:
        kind = SOURCES[index][0]
        self.pages.setCurrentIndex(index)
        if kind == "from_stage":
            self._stage_chosen(self._earlier[-1] if self._earlier else "")
        elif kind == "builtin":
            self._emit(builtin=self.builtin.currentText())
        elif kind == "hub":
            self._emit(hub=self.hub.text().strip())
        else:
            self._emit(path=self.path.text().strip())

    def _stage_chosen(self, name: str) -> None:
        # A joint stage hands on a model per member: take the first until another is chosen.
        members = self._joint.get(name)
        if name == self._value.get("from_stage") and self._value.get("member") in (members or []):
            return  # the same stage again: its member stays
        if members:
            self._emit(from_stage=name, member=members[0])
        else:
            self._emit(from_stage=name)

    def _emit(self, **source: Any) -> None:
        value = dict(source)
        if "builtin" in source and self._value.get("vocab_size") is not None:
            value["vocab_size"] = self._value["vocab_size"]
        if "hub" in source and self._value.get("revision"):
            value["revision"] = self._value["revision"]
        if value != self._value:
            self.edited.emit(value)

    def _vocab_done(self) -> None:
        text = self.vocab.text().strip()
        value = {k: v for k, v in self._value.items() if k != "vocab_size"}
        if text:
            value["vocab_size"] = int(text) if text.isdigit() else text
        if value != self._value:
            self.edited.emit(value)

    def _revision_done(self) -> None:
        value = {k: v for k, v in self._value.items() if k != "revision"}
        if self.revision.text().strip():
            value["revision"] = self.revision.text().strip()
        if value != self._value:
            self.edited.emit(value)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder", self.plan_dir)
        if folder:
            self.path.setText(folder)
            self._emit(path=folder)


def _form(*rows: tuple[str, QWidget]) -> QWidget:
    page = QWidget()
    form = narrow_form(QFormLayout(page))
    form.setContentsMargins(0, 4, 0, 0)
    for label, widget in rows:
        form.addRow(label, widget)
    return page


class _Pages(QWidget):
    """One page shown at a time, as tall as that page (a QStackedWidget is as tall as its
    tallest page once its rows wrap: blank rows under a one-line page)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._current = 0

    def addWidget(self, page: QWidget) -> None:  # noqa: N802 - QStackedWidget's name
        self._layout.addWidget(page)  # parented first: a shown orphan would be a window
        page.setVisible(self._layout.count() - 1 == self._current)

    def count(self) -> int:
        return self._layout.count()

    def widget(self, index: int) -> QWidget:
        return self._layout.itemAt(index).widget()

    def currentIndex(self) -> int:  # noqa: N802
        return self._current

    def currentWidget(self) -> QWidget:  # noqa: N802
        return self.widget(self._current)

    def setCurrentIndex(self, index: int) -> None:  # noqa: N802
        self._current = index
        for i in range(self.count()):
            self.widget(i).setVisible(i == index)
