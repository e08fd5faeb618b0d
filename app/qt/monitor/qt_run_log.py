"""The run's log: event lines that follow the newest line unless the person scrolled up.

QPlainTextEdit follows appends only when its scroll bar is exactly at the bottom before
each one. Two ways that broke during a live run: lines appended while the Log tab is
hidden leave the bar a line short of the bottom (the layout is lazy), and once the block
limit is reached the dropped top lines send the bar back to 0. Either way it stopped
following for good. Here following is a state of its own, changed only by the person's
scrolling.

Long lines are wrapped here, not by the editor, so that their continuation starts under
the message column instead of under the time (QPlainTextEdit ignores indents); they are
wrapped again when the width changes."""

from __future__ import annotations

import textwrap
import time
from collections import deque

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QAbstractSlider, QPlainTextEdit

from app.model.browser_rows import STARTING
from engine.store.status import RunStatus

MAX_LINES = 20_000
KIND_WIDTH = 11  # the longest event kind ("checkpoint", "truncated") and a space
# Where a line's message starts: `time  kind  ` (`log_line`'s columns).
HANGING = 22
TIME_WIDTH = 10  # `HH:MM:SS  `

# Status changes the engine does not record as events, said in the log as they happen.
STATUS_NOTES = {
    RunStatus.PAUSED: "paused",
    RunStatus.STOPPING: "stop requested: the run stops after its current step",
    RunStatus.STOPPED: "stopped (Resume continues from the last checkpoint)",
    RunStatus.INTERRUPTED: "interrupted: the engine is gone (Resume continues from the last "
    "checkpoint)",
    RunStatus.FAILED: "failed",
    RunStatus.FINISHED: "finished",
    STARTING: "resuming from the last checkpoint",
}


def status_note(before: str | None, after: str) -> str | None:
    """The log line for a change of the run's status seen live (none on opening a run)."""
    if before in (None, after):
        return None
    if after == RunStatus.RUNNING:
        return "resumed" if before == RunStatus.PAUSED else None
    return STATUS_NOTES.get(after)


def log_line(event: dict, wall_s: float | None = None) -> str:
    """`time  kind  message` in columns (the log is drawn in a fixed-width font); the kind
    is left blank when the message starts with it ("checkpoint at step 100")."""
    wall = wall_s if wall_s is not None else (event.get("wall_ms") or 0) / 1000
    stamp = time.strftime("%H:%M:%S", time.localtime(wall))
    level = event.get("level") or "info"
    mark = "" if level == "info" else f"{level.upper()}: "
    kind, message = str(event.get("kind") or ""), str(event.get("message") or "")
    if message.lower().startswith(kind.lower()):
        kind = ""
    return f"{stamp}  {kind:<{KIND_WIDTH}} {mark}{message}"


def wrap_line(line: str, columns: int) -> str:
    """`line` cut to `columns` characters a row, continuation rows indented to the
    message column (to the kind column in a narrow log): never under the time."""
    if len(line) <= columns or columns < 30:
        return line
    # A narrow log indents under the kind column instead: the message keeps some room.
    indent = HANGING if columns >= HANGING + 40 else TIME_WIDTH
    rows = textwrap.wrap(
        line,
        width=columns,
        subsequent_indent=" " * indent,
        break_long_words=True,
        break_on_hyphens=False,
        drop_whitespace=True,
        replace_whitespace=False,
    )
    return "\n".join(rows) if rows else line


class QtRunLog(QPlainTextEdit):
    """Read-only log lines; `append_lines` keeps the newest in view while following."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("logConsole")
        self.setAccessibleName("Run log")
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))  # columns
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)  # wrapped by `wrap_line`
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Always shown: a bar that comes and goes changes the width, the width rewraps the
        # lines, and rewrapping a log at the edge of needing the bar hid and showed it
        # again forever (the window hung at 100 % CPU when a killed run's lines came in).
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.following = True
        self.raw: deque[str] = deque(maxlen=MAX_LINES)
        self._columns = 0
        self.verticalScrollBar().actionTriggered.connect(self._on_scrolled)

    def columns(self) -> int:
        """Characters that fit in a row of the view."""
        advance = max(1, self.fontMetrics().horizontalAdvance("0"))
        return max(1, (self.viewport().width() - 10) // advance - 1)

    def append_lines(self, text: str) -> None:
        """Add lines at the end (scrolled into view while following)."""
        lines = text.split("\n")
        self.raw.extend(lines)
        self._columns = self._columns or self.columns()
        self.appendPlainText("\n".join(wrap_line(line, self._columns) for line in lines))
        if self.following:
            self.scroll_to_end()

    def clear_lines(self) -> None:
        self.raw.clear()
        self.clear()

    def _rewrap(self) -> None:
        columns = self.columns()
        if columns == self._columns or not self.raw:
            self._columns = columns
            return
        self._columns = columns
        value = self.verticalScrollBar().value()
        self.setPlainText("\n".join(wrap_line(line, columns) for line in self.raw))
        if self.following:
            self.scroll_to_end()
        else:
            self.verticalScrollBar().setValue(value)

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
        self._rewrap()
        if self.following:
            self.scroll_to_end()
