"""Every plan edit is an undo command that calls the plan document (Orange's habit):
widgets never change the plan directly."""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtGui import QUndoCommand

from app.model.plan_document import UNSET, PlanDocument
from app.model.schema_fields import short_label

_SET_VALUE_ID = 1


class InsertStage(QUndoCommand):
    """Add a stage at a position (a palette drop, paste, or duplicate)."""

    def __init__(self, doc: PlanDocument, index: int, stage: dict[str, Any], text: str = ""):
        super().__init__(text or f"Add stage '{stage.get('name', '')}'")
        self.doc, self.index, self.stage = doc, index, copy.deepcopy(stage)

    def redo(self) -> None:
        self.doc.insert_stage(self.index, self.stage)

    def undo(self) -> None:
        self.doc.remove_stage(self.index)


class RemoveStage(QUndoCommand):
    """Delete a stage."""

    def __init__(self, doc: PlanDocument, index: int):
        super().__init__(f"Delete stage '{doc.stage_names()[index]}'")
        self.doc, self.index, self.stage = doc, index, doc.stage(index)

    def redo(self) -> None:
        self.doc.remove_stage(self.index)

    def undo(self) -> None:
        self.doc.insert_stage(self.index, self.stage)


class MoveStage(QUndoCommand):
    """Move a stage to another position (a drag inside the plan)."""

    def __init__(self, doc: PlanDocument, source: int, target: int):
        super().__init__(f"Move stage '{doc.stage_names()[source]}'")
        self.doc, self.source, self.target = doc, source, target

    def redo(self) -> None:
        self.doc.move_stage(self.source, self.target)

    def undo(self) -> None:
        self.doc.move_stage(self.target, self.source)


class SetStageValue(QUndoCommand):
    """Change one setting of a stage. Consecutive changes of the same setting merge into
    one step, so undo goes back to the value before the editing began."""

    def __init__(self, doc: PlanDocument, index: int, keys: tuple[str, ...], value: Any):
        super().__init__(f"Change {short_label(keys)}")
        self.doc, self.index, self.keys = doc, index, keys
        self.before = doc.stage(index)
        self.value = copy.deepcopy(value)

    def id(self) -> int:
        return _SET_VALUE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, SetStageValue) or (other.index, other.keys) != (
            self.index,
            self.keys,
        ):
            return False
        self.value = other.value
        return True

    def redo(self) -> None:
        self.doc.set_value(self.index, self.keys, self.value)

    def undo(self) -> None:
        self.doc.replace_stage(self.index, self.before)


class SetPlanValue(QUndoCommand):
    """Change the plan's name or description."""

    def __init__(self, doc: PlanDocument, key: str, value: Any):
        super().__init__(f"Plan {key}")
        self.doc, self.key, self.value = doc, key, value
        self.before = copy.deepcopy(doc.data.get(key, UNSET))

    def redo(self) -> None:
        self.doc.set_plan_value(self.key, self.value)

    def undo(self) -> None:
        self.doc.set_plan_value(self.key, self.before)


class RenameStage(QUndoCommand):
    """Rename a stage and the references of the stages that start from it: one step."""

    def __init__(self, doc: PlanDocument, index: int, name: Any):
        old = doc.stage_names()[index]
        super().__init__(f"Rename '{old}' to '{name if name is not UNSET else ''}'")
        self.doc, self.index, self.name = doc, index, name
        self.before = copy.deepcopy(doc.stages)

    def redo(self) -> None:
        self.doc.rename_stage(self.index, self.name)

    def undo(self) -> None:
        for i, stage in enumerate(self.before):
            if stage != self.doc.stages[i]:
                self.doc.replace_stage(i, stage)


_MEMBERS_ID = 2


class EditStages(QUndoCommand):
    """Replace the stages an edit changed (a members list edit, which may reach the later
    stages that name a joint member): one step. Edits with the same `merge` key (typing in
    one member's field) merge, like `SetStageValue`; list edits (add, remove, move) never."""

    def __init__(self, doc: PlanDocument, after: list[Any], text: str, merge: Any = None):
        super().__init__(text)
        self.doc, self.merge = doc, merge
        self.before = copy.deepcopy(doc.stages)
        self.after = copy.deepcopy(after)

    def id(self) -> int:
        return _MEMBERS_ID if self.merge is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, EditStages) or other.merge != self.merge:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self._show(self.after)

    def undo(self) -> None:
        self._show(self.before)

    def _show(self, stages: list[Any]) -> None:
        for i, stage in enumerate(stages):
            if stage != self.doc.stages[i]:
                self.doc.replace_stage(i, stage)
