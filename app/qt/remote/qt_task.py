"""Work that talks to a target (ssh, Slurm) on a worker thread: the GUI thread never
waits on the network. Lines, progress and the outcome arrive as signals on the GUI
thread (queued across threads), as app/qt/monitor/qt_run_channel.py does for a run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal


class QtTask(QObject):
    """Runs `work(say, progress)` once on a thread of its own: `said` for each line,
    `progressed` (done, total), then `succeeded` with the result or `failed` with one
    sentence (the errors in `expected` carry it; anything else is named)."""

    said = Signal(str)
    progressed = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    ended = Signal()  # after succeeded/failed's slots ran: `busy` is False from then on

    def __init__(
        self,
        work: Callable[[Callable[[str], None], Callable[[int, int], None]], Any],
        expected: tuple[type[BaseException], ...] = (),
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self._work, self._expected = work, expected
        self._worker: threading.Thread | None = None
        self.busy = False
        self.ended.connect(self._mark_ended)  # on the GUI thread, after the outcome's slots

    def _mark_ended(self) -> None:
        self.busy = False

    def start(self) -> None:
        self.busy = True
        self._worker = threading.Thread(target=self._run, name="stagelab-target", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        try:
            result = self._work(self.said.emit, self.progressed.emit)
        except self._expected as exc:
            self._end(self.failed, sentence(exc))
        except Exception as exc:  # noqa: BLE001 - said in the dialog; the window goes on
            self._end(self.failed, f"{type(exc).__name__}: {exc}")
        else:
            self._end(self.succeeded, result)

    def _end(self, signal, value) -> None:
        try:
            signal.emit(value)
            self.ended.emit()
        except RuntimeError:
            pass  # the dialog that asked was closed meanwhile

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the thread (tests, and closing a dialog)."""
        if self._worker is not None:
            self._worker.join(timeout)


def sentence(exc: BaseException) -> str:
    """An error's one sentence (a KeyError's quotes taken off, none of the sentence's own)."""
    text = str(exc)
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text
