"""The members of a `joint` or `ensemble` stage as a list (Add, Remove, Move up/down) with
the selected member's settings below it (master/detail, so it fits a narrow inspector).
Ensemble members are model sources (the model picker); joint members have a name, task,
loss weight, learning-rate multiplier, metrics, data (the data picker with its preview)
and, with mutual coupling, their own model. Stage cards dragged from the plan onto an
ensemble's list become members.

The widget computes the plan after each edit (`app.model.members`) and emits it; the
inspector turns it into one undo step."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model import members as m
from app.model.plan_document import UNSET
from app.model.schema_fields import field_spec, short_label
from app.qt.editor.qt_data_picker import QtDataPicker
from app.qt.editor.qt_fields import FieldEditor, make_editor
from app.qt.editor.qt_model_source import QtModelSource
from app.qt.editor.qt_plan_view import STAGE_MIME
from app.qt.editor.qt_setting_boxes import narrow_form
from app.qt.qt_look import PROBLEM_COLOR, in_problem_color
from engine.spec.settings import DataSource
from engine.spec.stages import JointMember

MEMBER_KEYS = ("name", "task", "weight", "lr_multiplier", "metrics")
# Data settings a member's data shows besides the picker (the rest: in the plan file).
MEMBER_DATA_KEYS = ("max_length", "eval_ratio", "test_ratio", "split_seed", "limit")
_MEMBER_PATH = re.compile(r"^members\[(\d+)\](?:\.(.*))?$")


class QtMembers(QWidget):
    """Edits the `members` of one joint or ensemble stage."""

    edited = Signal(object, str, object)  # stages after the edit, undo text, merge key
    refused = Signal(str)  # a drop that cannot become a member, in words

    def __init__(self, kind: str, parent=None):
        super().__init__(parent)
        self.setObjectName("membersEditor")
        self.kind = kind
        self.row = -1  # the selected member
        self._stages: list[Any] = []
        self._index = -1
        self._plan_dir = Path(".")
        self._problems: dict[int, list[tuple[str, str]]] = {}

        self.problem = _problem_label()
        self.list = _MemberList(accepts_stages=kind in m.SOURCE_MEMBER_KINDS)
        self.list.setObjectName("membersList")
        self.list.setAccessibleName("Members")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setFixedHeight(118)  # five rows; more scroll
        self.list.currentRowChanged.connect(self._on_row_changed)
        self.list.refusal = lambda row: m.drop_refusal(self._stages, self._index, row)
        self.list.refused.connect(self.refused)
        self.list.stage_dropped.connect(self.drop_stage)
        self.add_button = _button("Add", "addMemberButton", "Add a member at the end")
        self.remove_button = _button("Remove", "removeMemberButton", "Remove the selected member")
        self.up_button = _button("Up", "memberUpButton", "Move the selected member up")
        self.down_button = _button("Down", "memberDownButton", "Move the selected member down")
        self.add_button.clicked.connect(self.add)
        self.remove_button.clicked.connect(self.remove)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.detail_title = QLabel()
        self.detail_title.setObjectName("memberTitle")
        self.detail_title.setWordWrap(True)
        self.detail_problem = _problem_label()
        self.editors: dict[tuple[str, ...], FieldEditor] = {}
        self.model_picker = QtModelSource("Member model")
        self.model_picker.setObjectName("memberModelPicker")
        self.data_picker: QtDataPicker | None = None
        self.detail = QWidget()
        self.detail.setObjectName("memberDetail")
        detail = QVBoxLayout(self.detail)
        detail.setContentsMargins(0, 6, 0, 0)
        detail.addWidget(self.detail_title)
        detail.addWidget(self.detail_problem)
        if kind == "joint":
            self._build_joint(detail)
        else:
            self.model_picker.edited.connect(lambda value: self._set((), value, "model"))
            detail.addWidget(self.model_picker)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.problem)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        if kind in m.SOURCE_MEMBER_KINDS:
            hint = QLabel("<small>Drag a stage card here to add its model.</small>")
            hint.setWordWrap(True)
            layout.addWidget(hint)
        layout.addWidget(self.detail)

    def _build_joint(self, detail: QVBoxLayout) -> None:
        form = narrow_form(QFormLayout())
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key in MEMBER_KEYS:
            spec = field_spec(key, JointMember)
            editor = make_editor(spec)
            editor.setObjectName(f"member_{key}")
            editor.edited.connect(lambda value, k=(key,): self._set(k, value, k[-1]))
            self.editors[(key,)] = editor
            label = QLabel(spec.label if key != "lr_multiplier" else "LR multiplier")
            label.setToolTip(spec.help)
            form.addRow(label, editor)
        detail.addLayout(form)
        self.model_title = _bold("Model")
        self.model_picker.edited.connect(lambda value: self._set(("model",), value, "model"))
        detail.addWidget(self.model_title)
        detail.addWidget(self.model_picker)
        detail.addWidget(_bold("Data"))
        picker = QtDataPicker()
        picker.setObjectName("memberDataPicker")
        picker.value_edited.connect(lambda key, value: self._set(("data", key), value, key))
        picker.replaced.connect(lambda value: self._set(("data",), value, "data"))
        self.data_picker = picker
        detail.addWidget(picker)
        rest = narrow_form(QFormLayout())
        rest.setContentsMargins(0, 0, 0, 0)
        rest.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key in MEMBER_DATA_KEYS:
            spec = field_spec(key, DataSource)
            editor = make_editor(spec)
            editor.edited.connect(lambda value, k=("data", key): self._set(k, value, k[-1]))
            self.editors[("data", key)] = editor
            label = QLabel(spec.label)
            label.setToolTip(spec.help)
            rest.addRow(label, editor)
        detail.addLayout(rest)

    # -- following the plan -----------------------------------------------------------------

    def show_value(
        self, stages: list[Any], index: int, plan_dir: Path, problems: list[tuple[str, str]]
    ) -> None:
        """Show the members of stage `index` of `stages`; `problems` are the stage's
        (path inside the stage, message) whose path starts with 'members'."""
        self._stages, self._index, self._plan_dir = stages, index, plan_dir
        stage = stages[index]
        members = m.members_of(stage)
        self._problems = {}
        listed: list[str] = []
        for sub, message in problems:
            match = _MEMBER_PATH.match(sub)
            if match and int(match.group(1)) < len(members):
                self._problems.setdefault(int(match.group(1)), []).append(
                    (match.group(2) or "", message)
                )
            else:
                listed.append(f"{sub}: {message}" if sub != "members" else message)
        self.problem.setText("\n".join(listed))
        self.problem.setVisible(bool(listed))
        self.row = min(self.row, len(members) - 1)
        if self.row < 0 and members:
            self.row = 0
        self.list.blockSignals(True)
        self.list.clear()
        for i, member in enumerate(members):
            text = m.member_text(stage, member)
            item = QListWidgetItem(f"⚠ {text}" if i in self._problems else text)
            item.setToolTip(
                "\n".join(f"{k or 'member'}: {t}" for k, t in self._problems.get(i, [])) or text
            )
            if i in self._problems:
                item.setForeground(PROBLEM_COLOR)
            self.list.addItem(item)
        self.list.setCurrentRow(self.row)
        self.list.blockSignals(False)
        self._show_detail()

    def _show_detail(self) -> None:
        stage = self._stages[self._index]
        members = m.members_of(stage)
        self.remove_button.setEnabled(self.row >= 0)
        self.up_button.setEnabled(self.row > 0)
        self.down_button.setEnabled(0 <= self.row < len(members) - 1)
        self.detail.setVisible(self.row >= 0)
        if self.row < 0:
            return
        member = members[self.row]
        earlier = [
            str(s.get("name", "")) for s in self._stages[: self._index] if isinstance(s, dict)
        ]
        joint = m.joint_members(self._stages[: self._index])
        problems = self._problems.get(self.row, [])
        if self.kind in m.SOURCE_MEMBER_KINDS:
            self.detail_title.setText(f"<b>Member {self.row + 1}</b> · {m.source_name(member)}")
            self.model_picker.show_value(member, earlier, str(self._plan_dir), joint)
            self.model_picker.show_problem("\n".join(t for _, t in problems))
            self.detail_problem.hide()
            return
        member = member if isinstance(member, dict) else {}
        self.detail_title.setText(
            f"<b>Member {self.row + 1} · {member.get('name') or '(no name)'}</b>"
        )
        for keys, editor in self.editors.items():
            value: Any = member
            for key in keys:
                value = value.get(key, UNSET) if isinstance(value, dict) else UNSET
            editor.show_value(value)
            editor.show_problem("\n".join(t for sub, t in problems if sub == ".".join(keys)))
        has_model = member.get("model") is not None
        shown = m.is_mutual(stage) or has_model  # a stray model stays visible, to be cleared
        self.model_title.setVisible(shown)
        self.model_picker.setVisible(shown)
        self.model_picker.show_value(member.get("model"), earlier, str(self._plan_dir), joint)
        self.model_picker.show_problem(
            "\n".join(t for sub, t in problems if sub == "model" or sub.startswith("model."))
        )
        self.data_picker.show_value(member.get("data"), self._plan_dir)
        data_problems = [
            t
            for sub, t in problems
            if (sub == "data" or sub.startswith("data."))
            and tuple(sub.split(".")) not in self.editors
        ]
        self.data_picker.show_problem("\n".join(data_problems))
        placed = {".".join(k) for k in self.editors} | {"model", "data"}
        rest = [
            f"{sub}: {t}" if sub else t
            for sub, t in problems
            if sub not in placed and not sub.startswith(("model.", "data."))
        ]
        self.detail_problem.setText("\n".join(rest))
        self.detail_problem.setVisible(bool(rest))

    # -- editing ----------------------------------------------------------------------------

    def _member_name(self, row: int) -> str:
        members = m.members_of(self._stages[self._index])
        member = members[row] if 0 <= row < len(members) else None
        if self.kind == "joint" and isinstance(member, dict):
            return str(member.get("name") or f"member {row + 1}")
        return m.source_name(member)

    def add(self) -> None:
        """Add a member at the end and select it."""
        after = m.add_member(self._stages, self._index)
        self.row = len(m.members_of(after[self._index])) - 1
        name = m.member_text(after[self._index], m.members_of(after[self._index])[-1])
        self.edited.emit(after, f"Add member '{name.split(' · ')[0]}'", None)

    def remove(self) -> None:
        """Remove the selected member."""
        if self.row < 0:
            return
        name = self._member_name(self.row)
        after = m.remove_member(self._stages, self._index, self.row)
        self.row = min(self.row, len(m.members_of(after[self._index])) - 1)
        self.edited.emit(after, f"Remove member '{name}'", None)

    def move_selected(self, step: int) -> None:
        """Move the selected member up (-1) or down (1)."""
        target = self.row + step
        if self.row < 0 or not 0 <= target < len(m.members_of(self._stages[self._index])):
            return
        name = self._member_name(self.row)
        after = m.move_member(self._stages, self._index, self.row, target)
        self.row = target
        self.edited.emit(after, f"Move member '{name}' {'up' if step < 0 else 'down'}", None)

    def drop_stage(self, source_row: int) -> None:
        """Add stage `source_row` of the plan as a member (an earlier stage only; a later
        one is refused, and `refused` says why)."""
        refusal = m.drop_refusal(self._stages, self._index, source_row)
        if refusal:
            self.refused.emit(refusal)
            return
        after = m.drop_stage(self._stages, self._index, source_row)
        self.row = len(m.members_of(after[self._index])) - 1
        name = self._stages[source_row].get("name")
        self.edited.emit(after, f"Add member '{name}'", None)

    def _set(self, keys: tuple[str, ...], value: Any, what: str) -> None:
        if self.row < 0:
            return
        member = m.members_of(self._stages[self._index])[self.row]
        current: Any = member
        for key in keys:
            current = current.get(key, UNSET) if isinstance(current, dict) else UNSET
        if current == value:
            return
        after = m.set_member_value(self._stages, self._index, self.row, keys, value)
        text = f"Change {short_label(keys) if keys else 'model'} of '{self._member_name(self.row)}'"
        self.edited.emit(after, text, ("member", self._index, self.row, keys))

    def _on_row_changed(self, row: int) -> None:
        self.row = row
        if self._stages:
            self._show_detail()


class _MemberList(QListWidget):
    """The list of members; an ensemble's takes stage cards dragged from the plan."""

    stage_dropped = Signal(int)  # the plan row of a stage that may become a member
    refused = Signal(str)  # why the stage dragged over the list may not

    def __init__(self, accepts_stages: bool, parent=None):
        super().__init__(parent)
        self._accepts = accepts_stages
        self.refusal = lambda row: ""  # why plan row `row` cannot be dropped ('' if it can)
        self.setAcceptDrops(accepts_stages)
        self.setDragDropMode(
            QAbstractItemView.DragDropMode.DropOnly
            if accepts_stages
            else QAbstractItemView.DragDropMode.NoDragDrop
        )

    def _takes(self, event) -> bool:
        return self._accepts and event.mimeData().hasFormat(STAGE_MIME)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if self._takes(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        # A later stage shows the no-drop cursor, and the status bar says why.
        if self._takes(event) and not self._refused(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802
        if not self._takes(event) or self._refused(event):
            event.ignore()
            return
        row = _dragged_row(event)
        event.setDropAction(Qt.DropAction.CopyAction)  # the card stays in the plan
        event.accept()
        self.stage_dropped.emit(row)

    def _refused(self, event) -> bool:
        why = self.refusal(_dragged_row(event))
        if why:
            self.refused.emit(why)
        return bool(why)


def _dragged_row(event) -> int:
    try:
        return int(bytes(event.mimeData().data(STAGE_MIME).data()).decode())
    except ValueError:
        return -1


def _button(text: str, name: str, tip: str) -> QToolButton:
    # Tool buttons are as wide as their words: four push buttons overflow a 320-px inspector.
    button = QToolButton()
    button.setText(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    return button


def _bold(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    return label


def _problem_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    in_problem_color(label)
    label.hide()
    return label
