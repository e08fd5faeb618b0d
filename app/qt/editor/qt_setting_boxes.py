"""The boxes the inspector lays a stage's settings in: a settings group that folds under
its title (`QtCollapsible`), a titled box around one widget (`boxed`), and forms and choice
boxes narrow enough for a small screen (`narrow_form`, `narrow_combo`)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QToolButton, QVBoxLayout, QWidget


class QtCollapsible(QWidget):
    """A settings group under a title button that folds it (the whole form is ~2,500 px)."""

    foldedByPerson = Signal(str, bool)  # key, folded: the person clicked the title

    def __init__(self, box: QGroupBox, key: str, fill=None, parent: QWidget | None = None):
        """`fill`: called once, when the section is first opened, to make the box's rows."""
        super().__init__(parent)
        self.setObjectName(f"collapsible_{key}")
        self.key, self.box, self._fill = key, box, fill
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.button = QToolButton()
        self.button.setObjectName(f"toggle_{key}")
        self.button.setText(box.title())
        self.button.setCheckable(True)
        self.button.setAutoRaise(True)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        font = self.button.font()
        font.setBold(True)
        self.button.setFont(font)
        box.setTitle("")
        layout.addWidget(self.button)
        layout.addWidget(box)
        self.button.toggled.connect(self._toggled)

    def _toggled(self, on: bool) -> None:
        self.foldedByPerson.emit(self.key, not on)  # first: opening may refresh the form
        self._fold(on)

    def _fold(self, on: bool) -> None:
        if on and self._fill is not None:
            fill, self._fill = self._fill, None
            fill()
        self.box.setVisible(on)
        self.button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def set_open(self, on: bool) -> None:
        """Open or fold it for the program (not a person's choice)."""
        self.button.blockSignals(True)
        self.button.setChecked(on)
        self.button.blockSignals(False)
        self._fold(on)


def boxed(title: str, widget: QWidget) -> QGroupBox:
    """`widget` alone in a titled box."""
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box


# The inspector's forms shrink to its minimum on a small screen (the dock has no sideways
# scrolling, so anything wider was cut off). Set where each is made: a search of the built
# form (findChildren) wraps every one of its widgets for Python, ~3 ms of each start.


def narrow_form(form: QFormLayout) -> QFormLayout:
    """`form`, whose long rows put the field under its label."""
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    return form


def narrow_combo(combo: QComboBox) -> QComboBox:
    """`combo`, no longer asking for its longest choice's width."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo
