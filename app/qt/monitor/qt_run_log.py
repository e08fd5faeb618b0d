"""The run's log: event lines that follow the newest line unless the person scrolled up.

QPlainTextEdit follows appends only when its scroll bar is exactly at the bottom before
each one. Two ways that broke during a live run: lines appended while the Log tab is
hidden leave the bar a line short of the bottom (the layout is lazy), and once the block
limit is reached the dropped top lines send the bar back to 0. Either way it stopped
following for good. Here following is a state of its own, changed only by the person's
scrolling."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QAbstractSlider, QPlainTextEdit

MAX_LINES = 20_000


class QtRunLog(QPlainTextEdit):
    """Read-only log lines; `append_lines` keeps the newest in view while following."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("logConsole")
        self.setAccessibleName("Run log")
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))  # columns
        self.following = True
        self.verticalScrollBar().actionTriggered.connect(self._on_scrolled)

    def append_lines(self, text: str) -> None:
        """Add lines at the end (scrolled into view while following)."""
        self.appendPlainText(text)
        if self.following:
            self.scroll_to_end()

    def scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())
        self.horizontalScrollBar().setValue(0)  # lines are read from their start

    def _on_scrolled(self, action: int) -> None:
        # A person scrolled (wheel, drag, arrows): follow again once back at the bottom.
        if action != QAbstractSlider.SliderAction.SliderNoAction:
            bar = self.verticalScrollBar()
            self.following = bar.sliderPosition() >= bar.maximum()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.following:  # lines that came while hidden
            self.scroll_to_end()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.following:
            self.scroll_to_end()
