"""The Playground tab: a text, a Run button and two stage outputs side by side. Each
picked output runs in a worker process of its own, kept warm until the window closes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model.playground import finished_outputs
from app.qt.playground.qt_output_pane import QtOutputPane
from app.qt.playground.qt_predict_worker import QtPredictWorker

if TYPE_CHECKING:
    from engine.store.db import Store


class QtPlayground(QWidget):
    """Type a text, Run, compare what two outputs make of it."""

    def __init__(self, store_getter: Callable[[], Store], parent=None):
        super().__init__(parent)
        self.setObjectName("playground")
        self._store = store_getter
        self.workers: dict[str, QtPredictWorker] = {}
        intro = QLabel(
            "Try what a stage learned: pick finished outputs, type a text, Predict. Classifiers "
            "show label probabilities, causal LMs continue the text, masked LMs fill [MASK]."
        )
        intro.setWordWrap(True)
        self.input = QPlainTextEdit()
        self.input.setObjectName("playgroundText")
        self.input.setPlaceholderText("A text to try…")
        self.input.setMaximumHeight(64)
        # Not "Run": the toolbar's Run starts a training run of the plan.
        self.run_button = QPushButton("▶  Predict")
        self.run_button.setObjectName("playgroundRun")
        self.run_button.setToolTip("Ask every picked output (Ctrl+Return)")
        self.run_button.setShortcut("Ctrl+Return")
        self.run_button.clicked.connect(self.run)
        self.compare = QCheckBox("Compare two outputs")
        self.compare.setChecked(True)
        self.panes = [QtOutputPane(name, self.worker_for) for name in ("left", "right")]
        for pane in self.panes:
            pane.state_changed.connect(self._update_run)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compare)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        split = QSplitter(Qt.Orientation.Horizontal)
        for pane in self.panes:
            # Scrolled, not squeezed: two panes of sampling settings must not hold the
            # window wider than a 1024-pixel screen (the docks share the width).
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(pane)
            split.addWidget(scroll)
        # The right pane comes and goes with its scroll area.
        self.compare.toggled.connect(split.widget(1).setVisible)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.input)
        layout.addLayout(buttons)
        layout.addWidget(split, 1)
        self._update_run()

    def reload_outputs(self) -> None:
        """Offer every finished stage output of the workspace."""
        try:
            choices = finished_outputs(self._store())
        except Exception as exc:  # a locked database must not break the tab
            for pane in self.panes:
                pane.status.setText(f"The workspace cannot be read now ({exc})")
            return
        for pane in self.panes:
            pane.set_choices(choices)

    def worker_for(self, folder: str) -> QtPredictWorker:
        """The warm worker of `folder`, or a new one."""
        worker = self.workers.get(folder)
        if worker is None or worker.process.state().name == "NotRunning":
            worker = QtPredictWorker(folder, self)
            worker.seen = []
            # Panes that pick this output later still learn what it said when it was ready.
            worker.message.connect(
                lambda m, w=worker: w.seen.append(m) if m.get("id") is None else None
            )
            worker.ended.connect(lambda _d, f=folder: self.workers.pop(f, None))
            self.workers[folder] = worker
        return worker

    def run(self) -> None:
        text = self.input.toPlainText().strip()
        shown = [p for p in self.panes if p.isVisible() or not self.isVisible()]
        for pane in shown if self.compare.isChecked() else self.panes[:1]:
            pane.run(text)

    def _update_run(self) -> None:
        # A pane still loading (or answering) takes the text and answers once it can.
        self.run_button.setEnabled(any(p.state.can_answer for p in self.panes))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.reload_outputs()

    def close_workers(self) -> None:
        """Stop every worker (the window closes)."""
        for worker in list(self.workers.values()):
            worker.stop()
        self.workers.clear()
