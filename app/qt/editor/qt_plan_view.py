"""The plan as a column of stage cards: drop stage kinds from the palette anywhere, drag
cards to reorder, arrows show which earlier stage a stage starts from."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPointF,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import QDrag, QPainter, QPainterPath, QPen, QPolygonF, QUndoStack
from PySide6.QtWidgets import QAbstractItemView, QListView

from app.model.plan_document import PlanDocument, stage_references
from app.model.problem_words import stage_line
from app.model.stage_catalog import new_stage
from app.model.stage_summary import model_line
from app.qt.editor.qt_palette import KIND_MIME
from app.qt.editor.qt_stage_card import (
    GUTTER,
    MIN_CARD_WIDTH,
    MODEL_LINE_ROLE,
    PROBLEMS_ROLE,
    StageCardDelegate,
    card_rect,
)
from app.qt.editor.undo import InsertStage, MoveStage
from app.qt.qt_look import kind_color

log = logging.getLogger(__name__)
STAGE_MIME = "application/x-stagelab-stage-row"


class PlanListModel(QAbstractListModel):
    """Rows are the plan's stages; follows the document's change events."""

    def __init__(self, doc: PlanDocument, parent=None):
        super().__init__(parent)
        self.doc = doc
        doc.changed.connect(self._on_doc_changed)
        doc.problems_changed.connect(self._on_problems_changed)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.doc.stages)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        try:
            return self._data(index, role)
        except Exception as exc:  # noqa: BLE001 - an escaping exception kills the window
            log.warning("stage %d: role %d not shown: %r", index.row(), role, exc)
            return None

    def _data(self, index: QModelIndex, role: int) -> Any:
        if not index.isValid() or index.row() >= len(self.doc.stages):
            return None
        stage = self.doc.stages[index.row()]
        if role == PROBLEMS_ROLE:
            return [stage_line(p, sub) for sub, p in self.doc.stage_problems(index.row())]
        if role in (MODEL_LINE_ROLE, Qt.ItemDataRole.ToolTipRole):  # the tooltip: unelided
            return model_line(self.doc.stages, index.row())
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return str(stage.get("name", "")) if isinstance(stage, dict) else ""
        return None

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return (
            base | Qt.ItemFlag.ItemIsDragEnabled
            if index.isValid()
            else Qt.ItemFlag.ItemIsDropEnabled
        )

    def _on_doc_changed(self, what: str, index: int) -> None:
        if what == "stage" and 0 <= index < self.rowCount():
            # Later cards may describe a model this stage hands on (layers after a grow).
            self.dataChanged.emit(self.index(index), self.index(self.rowCount() - 1))
        else:
            self.beginResetModel()
            self.endResetModel()

    def _on_problems_changed(self) -> None:
        if self.rowCount():
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1), [PROBLEMS_ROLE])


class QtPlanView(QListView):
    """The stage cards of a plan. Drops and moves become undo commands on `undo_stack`."""

    stageSelected = Signal(int)  # noqa: N815 - Qt signal naming; -1 for none

    def __init__(self, doc: PlanDocument, undo_stack: QUndoStack, parent=None):
        super().__init__(parent)
        self.setObjectName("planView")
        self.setAccessibleName("Stage plan")
        self.undo_stack = undo_stack
        self._drop_row: int | None = None
        self.setItemDelegate(StageCardDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(False)  # drawn by paintEvent as a line between cards
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setUniformItemSizes(True)
        # Cards always fit the width (they elide their text), so no sideways scrolling.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(GUTTER + 8 + MIN_CARD_WIDTH + 24)
        self.set_document(doc)

    def set_document(self, doc: PlanDocument) -> None:
        """Show another plan."""
        self.doc = doc
        self.setModel(PlanListModel(doc, self))
        self.selectionModel().currentRowChanged.connect(
            lambda current, _: self.stageSelected.emit(current.row())
        )
        doc.changed.connect(lambda *_: self.viewport().update())
        # the selected stage's member arrows come and go with the selection
        self.selectionModel().selectionChanged.connect(lambda *_: self.viewport().update())

    def selected_row(self) -> int:
        """The selected stage's position, -1 if none."""
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def select_row(self, row: int) -> None:
        """Select a stage (clamped to the plan); -1 clears the selection."""
        if row < 0 or not self.model().rowCount():
            self.clearSelection()
            self.stageSelected.emit(-1)
            return
        row = min(row, self.model().rowCount() - 1)
        moved = self.currentIndex().row() != row
        self.setCurrentIndex(self.model().index(row))  # emits stageSelected when the row moved
        if not moved:
            self.stageSelected.emit(row)

    # -- drag and drop ----------------------------------------------------------------------

    def drop_row(self, y: float) -> int:
        """The position a drop at height `y` (viewport coordinates) inserts at."""
        for row in range(self.model().rowCount()):
            rect = self.visualRect(self.model().index(row))
            if y < rect.center().y():
                return row
        return self.model().rowCount()

    def startDrag(self, actions: Qt.DropAction) -> None:  # noqa: N802
        row = self.selected_row()
        if row < 0:
            return
        mime = QMimeData()
        mime.setData(STAGE_MIME, QByteArray(str(row).encode()))
        drag = QDrag(self)
        drag.setMimeData(mime)
        rect = self.visualRect(self.model().index(row))
        drag.setPixmap(self.viewport().grab(card_rect(rect)).scaledToWidth(320))
        # Move inside the plan; copy onto an ensemble's members list (the card stays).
        drag.exec(Qt.DropAction.MoveAction | Qt.DropAction.CopyAction, Qt.DropAction.MoveAction)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasFormat(KIND_MIME) or event.mimeData().hasFormat(STAGE_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if not (event.mimeData().hasFormat(KIND_MIME) or event.mimeData().hasFormat(STAGE_MIME)):
            event.ignore()
            return
        self._drop_row = self.drop_row(event.position().y())
        self.viewport().update()
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self._drop_row = None
        self.viewport().update()

    def dropEvent(self, event) -> None:  # noqa: N802
        self._drop_row = None
        self.viewport().update()
        row = self.drop_row(event.position().y())
        mime = event.mimeData()
        if mime.hasFormat(KIND_MIME):
            self.add_stage(bytes(mime.data(KIND_MIME).data()).decode(), row)
        elif mime.hasFormat(STAGE_MIME):
            self.move_stage(int(bytes(mime.data(STAGE_MIME).data()).decode()), row)
        else:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)  # the view, not Qt, moved the row
        event.accept()

    def add_stage(self, kind: str, row: int) -> None:
        """Insert a new stage of `kind` at `row` (an undo step) and select it."""
        names = self.doc.stage_names()
        stage = new_stage(kind, names[:row], names, self.doc.stages[:row])
        self.undo_stack.push(InsertStage(self.doc, row, stage))
        self.select_row(row)

    def move_stage(self, source: int, insert_at: int) -> None:
        """Move a stage to the gap before `insert_at` (positions before the move)."""
        target = insert_at - 1 if insert_at > source else insert_at
        if target != source:
            self.undo_stack.push(MoveStage(self.doc, source, target))
        self.select_row(target)

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self.model().rowCount():
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(
                self.viewport().rect(),
                Qt.AlignmentFlag.AlignCenter,
                "Drag stage kinds here from the palette\n(or double-click one)",
            )
        try:
            self._paint_arrows(painter)
        except Exception as exc:  # noqa: BLE001 - an escaping exception kills the window
            log.warning("stage arrows not drawn: %r", exc)  # (see StageCardDelegate.paint)
        if self._drop_row is not None:
            self._paint_drop_line(painter)
        painter.end()

    def _paint_arrows(self, painter: QPainter) -> None:
        names = self.doc.stage_names()
        selected = self.selected_row()
        lane = 0
        for row, stage in enumerate(self.doc.stages):
            if not isinstance(stage, dict):
                continue
            # Model and teacher always; the members' models of the selected stage only (the
            # arrows of three ensembles of three members would fill the gutter).
            sources = stage_references(stage) if row == selected else []
            sources += [stage.get("model"), stage.get("teacher")]
            refs = [s.get("from_stage") for s in sources if isinstance(s, dict)]
            for ref in dict.fromkeys(refs):
                if ref not in names[:row]:
                    continue
                start = card_rect(self.visualRect(self.model().index(names.index(ref))))
                end = card_rect(self.visualRect(self.model().index(row)))
                x = GUTTER - 10 - (lane % 3) * 9
                lane += 1
                a = QPointF(start.left(), start.center().y() + 8)
                b = QPointF(end.left(), end.center().y() - 8)
                path = QPainterPath(a)
                path.cubicTo(QPointF(x - 14, a.y()), QPointF(x - 14, b.y()), b)
                color = kind_color(str(stage.get("kind", "")))
                painter.setPen(QPen(color, 2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawPath(path)
                painter.setBrush(color)
                painter.drawPolygon(
                    QPolygonF([b, QPointF(b.x() - 8, b.y() - 5), QPointF(b.x() - 8, b.y() + 5)])
                )

    def _paint_drop_line(self, painter: QPainter) -> None:
        rows = self.model().rowCount()
        if rows == 0:
            y = 8
        elif self._drop_row < rows:
            y = self.visualRect(self.model().index(self._drop_row)).top() + 2
        else:
            y = self.visualRect(self.model().index(rows - 1)).bottom() - 2
        rect = QRect(GUTTER, y - 2, self.viewport().width() - GUTTER - 8, 4)
        painter.fillRect(rect, self.palette().highlight())
