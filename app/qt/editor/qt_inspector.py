"""The inspector: every setting of the selected stage, generated from the plan schema,
with problems shown inline. Edits become undo commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.model.members import MEMBER_KINDS, is_mutual, joint_members
from app.model.plan_document import UNSET, PlanDocument
from app.model.problem_owners import DATA_PICKER_KEYS, problems_by_owner
from app.model.schema_fields import FieldSpec, field_spec, model_fields, offered_metrics, shown
from app.qt.editor.qt_data_picker import QtDataPicker
from app.qt.editor.qt_fields import FieldEditor, make_editor
from app.qt.editor.qt_memory_line import QtMemoryLine
from app.qt.editor.qt_model_source import QtModelSource
from app.qt.editor.qt_setting_boxes import QtCollapsible, boxed, narrow_form
from app.qt.editor.undo import EditStages, RenameStage, SetStageValue
from app.qt.qt_look import in_problem_color
from app.qt.sweep.qt_sweep_menu import add_sweep_menu
from engine.spec import STAGE_CLASSES
from engine.spec.eval_metrics import raw_eval_metrics
from engine.spec.merge_stage import TASK_VECTOR_METHODS
from engine.spec.settings import DataSource
from engine.spec.stages import StageBase

if TYPE_CHECKING:
    from app.qt.editor.qt_members import QtMembers

TRAINING_KEYS = (
    "epochs",
    "max_steps",
    "batch_size",
    "grad_accum",
    "max_grad_norm",
    "precision",
    "compile",
    "kernels",
    "packing",
    "seed",
    "log_every_steps",
)
GROUP_TITLES = {
    "optimizer": "Optimizer",
    "schedule": "Learning-rate schedule",
    "regularization": "Regularisation",
    "augmentation": "Augmentation",
    "freezing": "Freezing and unfreezing",
    "eval": "Evaluation",
    "checkpoint": "Checkpoints",
    "batching": "Batches and data loading",
}
ALWAYS_OPEN = ("optimizer", "schedule")  # open even when the stage keeps the defaults
# Values a newly enabled optional group starts with, so it is valid at once.
OPTIONAL_GROUP_START = {"unfreeze": {"every_steps": 100}, "early_stopping": {}}


class QtStageInspector(QScrollArea):
    """Settings of one stage."""

    message = Signal(str)  # something to tell the person in the status bar

    def __init__(self, doc: PlanDocument, undo_stack: QUndoStack, parent=None):
        super().__init__(parent)
        self.setObjectName("stageInspector")
        self.setAccessibleName("Stage inspector")
        self.setWidgetResizable(True)
        # Narrow enough for a 1024-px screen beside the palette and the plan; the fields
        # grow with the dock.
        self.setMinimumWidth(320)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.undo_stack = undo_stack
        self.index = -1
        self._kind: str | None = None
        self.editors: dict[tuple[str, ...], FieldEditor] = {}
        self._groups: dict[tuple[str, ...], QGroupBox] = {}
        self._folded: dict[str, bool] = {}  # sections the person folded (True) or opened
        self._group_problems: dict[tuple[str, ...], QLabel] = {}
        # (free bytes, 'GPU 0') of the chosen GPU, (None, '') on the CPU: the window sets it.
        self.free_memory = lambda: (None, "")
        self._memory_after_paint = self._memory_waiting = False
        self._refreshing = False
        self.set_document(doc)

    def set_document(self, doc: PlanDocument) -> None:
        """Follow another plan."""
        self.doc = doc
        doc.changed.connect(self._on_doc_changed)
        self.show_stage(-1)

    # -- building ---------------------------------------------------------------------------

    def show_stage(self, index: int) -> None:
        """Show the settings of stage `index` (-1: none)."""
        self.index = index
        stage = self.doc.stages[index] if 0 <= index < len(self.doc.stages) else None
        kind = stage.get("kind") if isinstance(stage, dict) else None
        kind = kind if isinstance(kind, str) and kind in STAGE_CLASSES else None
        if kind is None or kind != self._kind:  # same kind: the form is reused, only values change
            self._build(kind, stage is not None)
        self.refresh()

    def _build(self, kind: str | None, has_stage: bool) -> None:
        self._kind = kind
        self.editors, self._groups, self._group_problems = {}, {}, {}
        # Every setting's row, shown only where it applies (engine.spec.relevance).
        self._rows: dict[tuple[str, ...], tuple[QFormLayout, QWidget]] = {}
        self._sections: dict[str, QtCollapsible] = {}
        self._section_widgets: dict[str, QWidget] = {}
        body = QWidget()
        layout = QVBoxLayout(body)
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.stage_problem = QLabel()
        self.stage_problem.setWordWrap(True)
        in_problem_color(self.stage_problem)
        layout.addWidget(self.header)
        self.memory_line = QtMemoryLine()
        layout.addWidget(self.memory_line)
        layout.addWidget(self.stage_problem)
        self.model_pickers: dict[str, QtModelSource] = {}
        self._model_boxes: dict[str, QGroupBox] = {}
        self.data_picker: QtDataPicker | None = None
        self.members: QtMembers | None = None
        if kind is None:
            self.header.setText(
                "Select a stage to see its settings."
                if not has_stage
                else "This stage has no known kind: set <b>kind</b> in the plan file."
            )
            layout.addStretch(1)
            self.setWidget(body)
            return
        cls = STAGE_CLASSES[kind]
        own = [k for k in cls.model_fields if k not in StageBase.model_fields and k != "kind"]
        general = ["name", "description"] + [
            k for k in own if k not in ("model", "teacher", "base", "data", "members")
        ]
        layout.addWidget(self._form_box("Stage", [field_spec(k, cls) for k in general], ()))
        for key in ("teacher", "model", "base"):
            if key in cls.model_fields:
                picker = QtModelSource(key.capitalize())
                picker.setObjectName(f"{key}Picker")
                if key == "model" and "teacher" in cls.model_fields:
                    picker.take_teacher_vocabulary()
                picker.edited.connect(lambda value, k=key: self._set((k,), value))
                self.model_pickers[key] = picker
                title = key.capitalize() if key != "base" else "Base (task_arithmetic, ties)"
                box = boxed("Shared encoder" if kind == "joint" else title, picker)
                self._model_boxes[key] = box
                layout.addWidget(box)
        if kind in MEMBER_KINDS:
            from app.qt.editor.qt_members import QtMembers  # only these kinds have members

            self.members = QtMembers(kind)
            self.members.edited.connect(self._members_edited)
            self.members.refused.connect(self.message)
            box = boxed("Members", self.members)
            box.setObjectName("section_members")
            layout.addWidget(box)
        if "data" in cls.model_fields:
            layout.addWidget(self._data_box())
        # An ensemble trains nothing: of these it reads the batch size and the seed.
        training = "Scoring" if kind in ("ensemble", "merge") else "Training"
        layout.addWidget(self._form_box(training, [field_spec(k, cls) for k in TRAINING_KEYS], ()))
        for key, title in GROUP_TITLES.items():
            # A folded section's settings are made when it is first opened: most stay
            # folded, and their rows were a fifth of the form's cost at every start.
            box = self._form_box(title, [], (key,))
            fields = list(field_spec(key, cls).fields)
            section = self._collapsible(
                box, key, lambda b=box, f=fields, k=key: self._fill(b, f, k)
            )
            self._section_widgets[key] = section
            layout.addWidget(section)
        layout.addStretch(1)
        self.setWidget(body)

    def _collapsible(self, box: QGroupBox, key: str, fill) -> QWidget:
        section = QtCollapsible(box, key, fill)
        section.foldedByPerson.connect(self._folded.__setitem__)
        self._sections[key] = section
        return section

    def _fill(self, box: QGroupBox, specs: list[FieldSpec], key: str) -> None:
        """The rows of a section opened for the first time, showing the stage's values
        (unless the refresh that opened it is about to)."""
        self._add_rows(box.layout(), specs, (key,))
        if not self._refreshing:
            self.refresh()

    def _fold_sections(self) -> None:
        # Open: what the person opened, else what the stage sets; always what has problems.
        troubled = {sub.split(".")[0] for sub, _ in self.doc.stage_problems(self.index)}
        for key, section in self._sections.items():
            unused = key not in ALWAYS_OPEN and self.doc.value(self.index, (key,)) is UNSET
            on = not self._folded.get(key, unused)
            section.set_open(on or key in troubled)

    def _data_box(self) -> QGroupBox:
        picker = QtDataPicker()
        picker.value_edited.connect(lambda key, value: self._set(("data", key), value))
        picker.replaced.connect(lambda value: self._set(("data",), value))
        self.data_picker = picker
        rest = [s for s in model_fields(DataSource) if s.key not in DATA_PICKER_KEYS]
        box = self._form_box("Data", rest, ("data",))
        box.layout().insertRow(0, picker)
        return box

    def _form_box(self, title: str, specs: list[FieldSpec], prefix: tuple[str, ...]) -> QGroupBox:
        box = QGroupBox(title)
        box.setObjectName(f"section_{'_'.join(prefix) or title.lower()}")
        self._groups[prefix] = box
        form = narrow_form(QFormLayout(box))
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        problem = QLabel()
        problem.setWordWrap(True)
        in_problem_color(problem)
        problem.hide()
        form.addRow(problem)
        self._group_problems[prefix] = problem
        self._add_rows(form, specs, prefix)
        return box

    def _add_rows(self, form: QFormLayout, specs: list[FieldSpec], prefix: tuple[str, ...]) -> None:
        for spec in specs:
            keys = (*prefix, spec.key)
            if spec.kind == "group":
                sub = self._form_box(spec.label, list(spec.fields), keys)
                if spec.optional:
                    sub.setCheckable(True)
                    sub.toggled.connect(lambda on, k=keys: self._toggle_group(k, on))
                sub.setToolTip(spec.help)
                form.addRow(sub)
                continue
            editor = make_editor(spec)
            editor.edited.connect(lambda value, k=keys: self._set(k, value))
            self.editors[keys] = editor
            label = QLabel(spec.label)
            label.setToolTip(editor.input.toolTip())
            add_sweep_menu(self, label, keys, spec)
            form.addRow(label, editor)
            self._rows[keys] = (form, editor)

    # -- following the plan -----------------------------------------------------------------

    def estimate_after_paint(self) -> None:
        """The next memory line waits for the window's first paint (first_paint_done): the
        estimate reads the stage's data for its vocabulary (~0.1-0.2 s for the demo) at
        every cold start. Later refreshes are immediate, as always."""
        self._memory_after_paint = True

    def first_paint_done(self) -> None:
        """The window has painted: the memory line that waited for it is filled now."""
        if self._memory_waiting:
            self.refresh_memory()

    def refresh_memory(self) -> None:
        """The size and memory line (also when the chosen GPUs change)."""
        self._memory_waiting = self._memory_after_paint
        if self._memory_after_paint:
            self._memory_after_paint = False
            return
        if self._kind is not None and 0 <= self.index < len(self.doc.stages):
            free, device = self.free_memory()
            self.memory_line.show_stage(
                self.doc.stages, self.index, self.doc.plan_dir, free, device
            )

    def refresh(self) -> None:
        """Show the stage's current values and problems."""
        if self._kind is None or not (0 <= self.index < len(self.doc.stages)):
            return
        stage = self.doc.stages[self.index]
        names = self.doc.stage_names()
        self._refreshing = True
        try:
            self._fold_sections()  # first: a section opened now makes its rows
        finally:
            self._refreshing = False
        self.header.setText(
            f"<b>Stage {self.index + 1} of {len(names)}</b> · {self._kind}"
            f"<br><small>Empty fields use the default shown in grey; ↺ goes back to it.</small>"
        )
        self.refresh_memory()
        for keys, editor in self.editors.items():
            value = self.doc.value(self.index, keys)
            if keys == ("eval", "metrics"):
                # Offered: the metrics of the stage's task; left out: its defaults
                # (engine.spec.eval_metrics).
                editor.offer(offered_metrics(stage, value))
                editor.show_value(value, raw_eval_metrics(stage))
            else:
                editor.show_value(value)
        # Only the settings that apply (the optimizer of an ensemble, the masking rate of a
        # classifier, momentum of AdamW are none), unless the plan sets them, so that a
        # stray value can be seen and cleared.
        for keys, (form, editor) in self._rows.items():
            form.setRowVisible(editor, self._shown(stage, keys))
        for key, section in self._section_widgets.items():
            section.setVisible(self._shown(stage, (key,)))
        for keys, box in self._groups.items():
            if box.isCheckable():
                box.blockSignals(True)
                box.setChecked(isinstance(self.doc.value(self.index, keys), dict))
                box.blockSignals(False)
        joint = joint_members(self.doc.stages[: self.index])
        for key, picker in self.model_pickers.items():
            picker.show_value(stage.get(key), names[: self.index], str(self.doc.plan_dir), joint)
        if self._kind == "joint":  # mutual: a model per member, none for the stage
            self._model_boxes["model"].setVisible(
                not is_mutual(stage) or stage.get("model") is not None
            )
        if self._kind == "merge":  # only the task-vector methods read a base
            self._model_boxes["base"].setVisible(
                stage.get("method") in TASK_VECTOR_METHODS or stage.get("base") is not None
            )
        if self.data_picker is not None:
            self.data_picker.show_value(
                stage.get("data"),
                self.doc.plan_dir,
                labelled=self._shown(stage, ("data", "label_column")),
                text=self._shown(stage, ("data", "text_column")),
                stage=stage,
            )
        self._show_problems()

    def _shown(self, stage: dict[str, Any], keys: tuple[str, ...]) -> bool:
        return shown(stage, keys, self.doc.value(self.index, keys) is not UNSET)

    def _show_problems(self) -> None:
        found, members = problems_by_owner(
            self.doc.stage_problems(self.index),
            self.editors.keys() | self._groups.keys(),
            members=self.members is not None,
        )
        for keys, editor in self.editors.items():
            editor.show_problem("\n".join(found.pop(keys, [])))
        for key, picker in self.model_pickers.items():
            picker.show_problem("\n".join(found.pop((key,), [])))
        if self.members is not None:
            self.members.show_value(self.doc.stages, self.index, self.doc.plan_dir, members)
        if self.data_picker is not None:
            texts = [t for k in DATA_PICKER_KEYS for t in found.pop(("data", k), [])]
            self.data_picker.show_problem("\n".join(texts + found.pop(("data",), [])))
        for keys, label in self._group_problems.items():
            texts = found.pop(keys, []) if keys else []
            label.setText("\n".join(texts))
            label.setVisible(bool(texts))
        rest = [f"{'.'.join(k) or 'stage'}: {m}" for k, ms in found.items() for m in ms]
        self.stage_problem.setText("\n".join(rest))
        self.stage_problem.setVisible(bool(rest))

    def _on_doc_changed(self, what: str, index: int) -> None:
        if what == "stage" and index == self.index:
            stage = self.doc.stages[index]
            if stage.get("kind") != self._kind:
                self.show_stage(index)
            else:
                self.refresh()
        elif what == "plan":
            self.refresh()

    # -- editing ----------------------------------------------------------------------------

    def _set(self, keys: tuple[str, ...], value: Any) -> None:
        if self.doc.value(self.index, keys) == value:
            return
        if keys == ("name",):  # the stages that start from this one follow the new name
            self.undo_stack.push(RenameStage(self.doc, self.index, value))
            return
        self.undo_stack.push(SetStageValue(self.doc, self.index, keys, value))

    def _members_edited(self, after: list[Any], text: str, merge: Any) -> None:
        self.undo_stack.push(EditStages(self.doc, after, text, merge))

    def _toggle_group(self, keys: tuple[str, ...], on: bool) -> None:
        start = OPTIONAL_GROUP_START.get(keys[-1], {})
        self._set(keys, dict(start) if on else UNSET)
