"""One side of the playground: a stage output picker, the sampling settings a causal LM
uses, and the last answer (probability bars, generated text, tags or fills)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QSpinBox,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model.playground import SAMPLING_DEFAULTS, OutputChoice, PaneState, folder_choice
from app.qt.playground.qt_predict_worker import QtPredictWorker
from app.qt.playground.qt_probability_bars import QtProbabilityBars
from app.qt.qt_look import in_problem_color

SPIN_RANGES = {  # (least, most, step, decimals)
    "max_new_tokens": (1, 2048, 8, 0),
    "temperature": (0.0, 5.0, 0.1, 2),
    "top_p": (0.01, 1.0, 0.05, 2),
    "top_k": (0, 100_000, 5, 0),
    "seed": (0, 2**31 - 1, 1, 0),
}
SPIN_LABELS = {
    "max_new_tokens": "New tokens",
    "temperature": "Temperature",
    "top_p": "Top-p",
    "top_k": "Top-k",
    "seed": "Seed",
}


MEMBER_ROLE = Qt.ItemDataRole.UserRole + 1  # True: a joint member, drawn indented


class _IndentedMembers(QStyledItemDelegate):
    """Draws a joint stage's members indented under the stage's line."""

    def paint(self, painter, option, index) -> None:  # noqa: D102
        if index.data(MEMBER_ROLE):
            option = QStyleOptionViewItem(option)
            option.rect.adjust(option.fontMetrics.horizontalAdvance("    "), 0, 0, 0)
        super().paint(painter, option, index)


class QtOutputPane(QFrame):
    """A picked output and its answers. `worker_for(folder)` gives a warm worker."""

    state_changed = Signal()

    def __init__(self, name: str, worker_for: Callable[[str], QtPredictWorker], parent=None):
        super().__init__(parent)
        self.setObjectName(f"playgroundPane_{name}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._worker_for = worker_for
        self.worker: QtPredictWorker | None = None
        self.state = PaneState()
        self._request = 0
        self.choices: list[OutputChoice] = []

        self.picker = QComboBox()
        self.picker.setObjectName("outputPicker")
        self.picker.setAccessibleName(f"Stage output ({name})")
        self.picker.setMinimumContentsLength(16)
        self.picker.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        # Joint members indented under their stage's line in the list.
        self.picker.setItemDelegate(_IndentedMembers(self.picker))
        self.picker.activated.connect(self._activated)
        folder = QToolButton()
        folder.setText("Folder…")
        folder.setToolTip("Try a saved model folder that is no run's output")
        folder.clicked.connect(self._pick_folder)
        top = QHBoxLayout()
        top.addWidget(self.picker, 1)
        top.addWidget(folder)

        self.status = QLabel()
        self.status.setObjectName("paneStatus")
        self.status.setWordWrap(True)
        self.sampling_box = QWidget()
        grid = QGridLayout(self.sampling_box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.spins: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for i, (key, (least, most, step, decimals)) in enumerate(SPIN_RANGES.items()):
            spin = QDoubleSpinBox() if decimals else QSpinBox()
            if decimals:
                spin.setDecimals(decimals)
            spin.setRange(least, most)
            spin.setSingleStep(step)
            spin.setValue(SAMPLING_DEFAULTS[key])
            spin.setObjectName(f"sampling_{key}")
            self.spins[key] = spin
            grid.addWidget(QLabel(SPIN_LABELS[key]), i // 3, (i % 3) * 2)
            grid.addWidget(spin, i // 3, (i % 3) * 2 + 1)
        self.bars = QtProbabilityBars()
        self.text = QPlainTextEdit()
        self.text.setObjectName("paneText")
        self.text.setReadOnly(True)
        self.error = QLabel()
        self.error.setWordWrap(True)
        in_problem_color(self.error)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.sampling_box)
        layout.addWidget(self.bars)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.error)
        # Takes the height the text would: bars and tags stay under the picker.
        self.filler = QWidget()
        self.filler.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        layout.addWidget(self.filler, 1)
        self._show()

    def set_choices(self, choices: list[OutputChoice]) -> None:
        """The outputs on offer; the current pick stays if it still exists."""
        current = self.worker.folder if self.worker else None
        known = {c.folder for c in choices}
        extra = [c for c in self.choices if c.run_id == "" and c.folder not in known]
        self.choices = choices + extra
        self.picker.blockSignals(True)
        self.picker.clear()
        for choice in self.choices:
            self.picker.addItem(choice.label)
            index = self.picker.count() - 1
            if choice.heading:  # a joint stage's line: its members follow, indented
                self.picker.model().item(index).setEnabled(False)
                self.picker.setItemData(index, "Pick one of its members below", 3)
            else:
                self.picker.setItemData(index, choice.folder, 3)  # tooltip role
            self.picker.setItemData(index, bool(choice.member), MEMBER_ROLE)
        if not self.choices:
            self.picker.setPlaceholderText("No finished stage yet: run a plan first")
        folders = [c.folder for c in self.choices]
        self.picker.setCurrentIndex(folders.index(current) if current in folders else -1)
        self.picker.blockSignals(False)

    def _activated(self, index: int) -> None:
        if 0 <= index < len(self.choices):
            self.pick(self.choices[index])

    def pick(self, choice: OutputChoice) -> None:
        """Load `choice` in its worker (started now, or the warm one); a joint stage's
        heading loads nothing."""
        if not choice.loadable:
            return
        if choice not in self.choices:
            self.set_choices([*self.choices, choice])
        self.picker.setCurrentIndex(self.choices.index(choice))
        if self.worker is not None:
            self.worker.message.disconnect(self._message)
            self.worker.ended.disconnect(self._ended)
        self.state.loading(choice.label)
        self.worker = self._worker_for(choice.folder)
        self.worker.message.connect(self._message)
        self.worker.ended.connect(self._ended)
        for message in getattr(self.worker, "seen", []):  # a warm worker said hello before
            self.state.apply(message)
        self._show()

    def run(self, text: str) -> bool:
        """Ask the picked output about `text`: now when it is ready, else once it has
        loaded (or answered the text before); False if nothing is picked or it failed."""
        if self.worker is None or not self.state.can_answer:
            return False
        if not self.state.ready or self.state.busy:
            self.state.queue(text)
            self._show()
            return True
        self._ask(text)
        return True

    def _ask(self, text: str) -> None:
        self.state.asked(text)
        self._request = self.worker.ask(text, self.sampling())
        self._show()

    def sampling(self) -> dict[str, Any]:
        return {key: spin.value() for key, spin in self.spins.items()}

    def _message(self, message: dict[str, Any]) -> None:
        if message.get("id") not in (None, self._request):
            return  # the other pane's request to a shared worker
        self.state.apply(message)
        queued = self.state.take_queued()
        if queued is not None:
            self._ask(queued)  # asked while loading or busy: its answer now
            return
        self._show()

    def _ended(self, detail: str) -> None:
        self.state.worker_ended(detail)
        self.worker = None
        self._show()

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A saved model folder")
        if folder:
            self.pick(folder_choice(folder))

    def _show(self) -> None:
        state = self.state
        self.status.setText(state.status)
        self.sampling_box.setVisible(state.task == "causal_lm")
        self.bars.setVisible(bool(state.bars))
        self.bars.set_rows(state.bars)
        shown = (
            state.prompt + state.generated if state.task == "causal_lm" else "\n".join(state.lines)
        )
        if self.text.toPlainText() != shown:
            self.text.setPlainText(shown)
        has_text = bool(shown) or state.task == "causal_lm"
        self.text.setVisible(has_text)
        self.filler.setVisible(not has_text)
        self.error.setText(state.error)
        self.error.setVisible(bool(state.error))
        self.state_changed.emit()
