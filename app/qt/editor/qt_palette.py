"""The palette of stage kinds, dragged into the plan."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QMimeData, QSize, Qt
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem

from app.model.stage_catalog import stage_kinds
from app.qt.qt_look import kind_icon

KIND_MIME = "application/x-stagelab-stage-kind"


class QtStagePalette(QListWidget):
    """A list of stage kinds (icon, name, one-line description); drag one into the plan,
    or double-click it to add it at the end."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("stagePalette")
        self.setAccessibleName("Stage palette")
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setIconSize(QSize(28, 28))
        self.setWordWrap(True)
        self.setSpacing(2)
        self.setToolTip("Drag a stage kind into the plan")
        # Readable titles and summaries even when the window is small: docks shrink to
        # their widgets' minimum, and Qt's own for a list is ~70 px.
        self.setMinimumWidth(150)
        for info in stage_kinds():
            note = "" if info.runnable else "\npreview: not runnable yet"
            item = QListWidgetItem(kind_icon(info.kind), f"{info.title}\n{info.summary}{note}")
            item.setData(Qt.ItemDataRole.UserRole, info.kind)
            item.setToolTip(f"{info.title}: {info.summary}")
            if not info.runnable:
                item.setForeground(self.palette().placeholderText())
            self.addItem(item)

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt's name
        return [KIND_MIME]

    def mimeData(self, items: list[QListWidgetItem]) -> QMimeData:  # noqa: N802
        return kind_mime(items[0].data(Qt.ItemDataRole.UserRole))


def kind_mime(kind: str) -> QMimeData:
    """Drag data that names a stage kind."""
    mime = QMimeData()
    mime.setData(KIND_MIME, QByteArray(kind.encode()))
    mime.setText(kind)
    return mime
