"""One worker process per picked output (`python -m engine.predict serve FOLDER`), kept
warm between requests and spoken to in JSON lines. The window itself never loads torch."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal

from app.model.playground import parse_line, request_line, worker_command


class QtPredictWorker(QObject):
    """A worker process and its messages."""

    message = Signal(dict)  # every JSON message of the worker
    ended = Signal(str)  # the process ended or could not start: why

    def __init__(self, folder: str, parent: QObject | None = None):
        super().__init__(parent)
        self.folder = folder
        self._next_id = 0
        self._buffer = b""
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        program, *arguments = worker_command(folder)
        self.process.start(program, arguments)

    def ask(self, text: str, sampling: dict[str, Any] | None = None) -> int:
        """Send a request; its answer comes as `message` signals with this id."""
        self._next_id += 1
        self.process.write(request_line(self._next_id, text, sampling))
        return self._next_id

    def stop(self) -> None:
        """End the process (its stdin closes first, so it leaves by itself if it can)."""
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return
        for signal in (self.process.finished, self.process.errorOccurred):
            signal.disconnect()
        self.process.closeWriteChannel()
        if not self.process.waitForFinished(1500):
            self.process.kill()
            self.process.waitForFinished(1500)

    def _read(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = parse_line(line)
            if message is not None:
                self.message.emit(message)

    def _finished(self, code: int, _status) -> None:
        errors = bytes(self.process.readAllStandardError().data()).decode(errors="replace")
        last = errors.strip().splitlines()[-1] if errors.strip() else ""
        self.ended.emit(f"exit code {code}" + (f": {last}" if last else ""))

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.ended.emit("it could not start")
