"""Checkpoints written off the training thread.

The training thread takes a snapshot (a host copy of every tensor, `take_snapshot`) and
goes on training; one background thread writes it to disk (atomically: temporary folder,
fsync, rename) and then runs what must follow a durable write: the checkpoint's row is
queued with the recorder, its event is recorded, and older folders are pruned. At most one
write is in flight: the next save waits for it first, so at most one snapshot is held;
the next snapshot copies into the last written one's buffers (`spare`) rather than into
fresh memory, and `finish` lets them go at the end of a stage.

A failed write is raised on the training thread, at its next step, save or wait, as a
`CheckpointWriteError`: the run fails as a synchronous failure would, and the previous
checkpoint, which nothing pruned, is where a resume continues.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions, ...)."""


class CheckpointWriter:
    """One writer thread (started with the first write) and the write in flight, if any."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self._what = ""
        self._written: Any = None  # what the last successful write wrote

    def submit(self, what: str, write: Callable[[], None], snapshot: Any = None) -> None:
        """Run `write` on the writer thread once the write in flight is done.

        Args:
            what: the checkpoint in words, for the error if it fails.
            write: writes the files, then records what follows a durable write.
            snapshot: what `write` writes; once written, it is `spare`.

        Raises:
            CheckpointWriteError: the write in flight failed.
        """
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stagelab-checkpoint")
        self._what = what
        self._pending = self._pool.submit(self._write, write, snapshot)

    def _write(self, write: Callable[[], None], snapshot: Any) -> None:
        write()
        self._written = snapshot

    def spare(self) -> Any:
        """The last written snapshot, which nothing reads any more, once (after `wait`)."""
        spare, self._written = self._written, None
        return spare

    def finish(self) -> None:
        """Wait for the write in flight, then let the spare snapshot's memory go.

        Raises:
            CheckpointWriteError: the write failed.
        """
        try:
            self.wait()
        finally:
            self._written = None

    @property
    def busy(self) -> bool:
        """Whether a write is in flight."""
        return self._pending is not None and not self._pending.done()

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk and recorded.

        Raises:
            CheckpointWriteError: it failed (raised once; the next wait returns).
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending.result()
        except Exception as exc:
            raise CheckpointWriteError(
                f"{self._what} could not be written ({type(exc).__name__}: {exc}); "
                f"the run can resume from its previous checkpoint"
            ) from exc

    def check(self) -> None:
        """Raise now if the write in flight has already failed; never blocks.

        Raises:
            CheckpointWriteError: it failed.
        """
        pending = self._pending
        if pending is not None and pending.done() and pending.exception() is not None:
            self.wait()
