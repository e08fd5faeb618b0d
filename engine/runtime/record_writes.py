"""Writing the recorder's rows to the store, and what happens when the store refuses.

A write the database refuses for now (locked, busy, disk full: `OperationalError`) keeps
its rows for the next flush; after `warn_after` seconds of failing a `store` warning event
says so. A batch refused for its content is split until the refused rows are found; those
are set aside in `runs/<id>/rejected.jsonl` with an `error` event. The buffering and the
flush order are the recorder's (engine/runtime/recorder.py); docs/engine.md, "The record".
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from engine.store import queries

Checkpoint = tuple[int, int, str, Callable[[], None] | None]


class StoreWrites:
    """The recorder's writes and their failures.

    Args:
        store: the open store.
        run_id: the run written to.
        run_dir: where refused rows are set aside (`rejected.jsonl`); None: standard error.
        warn_after: seconds of failing writes before a warning event is recorded.
        report: records an event (the recorder's `event`).
        pending: how many rows the recorder still holds (said in the warning).
    """

    def __init__(
        self,
        store: Any,
        run_id: str,
        *,
        run_dir: Path | None,
        warn_after: float,
        report: Callable[..., None],
        pending: Callable[[], int],
    ):
        self.store, self.run_id, self.run_dir = store, run_id, run_dir
        self.warn_after = warn_after
        self._report, self._pending = report, pending
        self.write_errors = 0  # failed write attempts, all kinds
        self.set_aside = 0  # rows the database refused for their content
        self.last_error: str | None = None
        self._failing_since: float | None = None
        self._warned = False

    def beat(self) -> None:
        """Beat the run's heartbeat in a transaction of its own: a run whose data cannot be
        written still reads as alive."""
        try:
            queries.heartbeat(self.store, self.run_id)
        except Exception as exc:  # noqa: BLE001 - retried at the next flush
            self.write_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def write(
        self, rows: list[Any], write: Callable[[list[Any]], None], what: str
    ) -> tuple[list[Any], Exception | None]:
        """Store rows; returns (rows to retry, the error that kept them).

        A refusal for now (OperationalError) keeps every row from the first refused one
        on; any other error splits the batch until the refused rows are found, and those
        are set aside."""
        if not rows:
            return [], None
        try:
            write(rows)
            return [], None
        except OperationalError as exc:
            self.write_errors += 1
            return rows, exc
        except Exception as exc:  # noqa: BLE001 - bad content: find the rows, keep the rest
            self.write_errors += 1
            if len(rows) == 1:
                self._set_aside(rows, what, exc)
                return [], None
            mid = len(rows) // 2
            left, first_exc = self.write(rows[:mid], write, what)
            if left:
                return left + rows[mid:], first_exc
            return self.write(rows[mid:], write, what)

    def write_checkpoints(
        self, checkpoints: list[Checkpoint]
    ) -> tuple[list[Checkpoint], Exception | None]:
        """Store checkpoint rows in order, running each one's `on_stored` after it; returns
        (the rows from the first refused one on, the error)."""
        for i, (stage_idx, step, path, on_stored) in enumerate(checkpoints):
            try:
                queries.add_checkpoint(self.store, self.run_id, stage_idx, step, path)
            except Exception as exc:  # noqa: BLE001 - the row waits; the folder is kept
                self.write_errors += 1
                return checkpoints[i:], exc
            if on_stored is not None:
                try:
                    on_stored()
                except Exception as exc:  # noqa: BLE001 - pruning old folders is housekeeping
                    self._report("store", f"checkpoint housekeeping failed: {exc}", level="warning")
        return [], None

    def _set_aside(self, rows: list[Any], what: str, exc: Exception) -> None:
        self.set_aside += len(rows)
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        place = "standard error"
        if self.run_dir is not None:
            try:
                path = Path(self.run_dir) / "rejected.jsonl"
                with open(path, "a", encoding="utf-8") as fh:
                    for row in rows:
                        fh.write(
                            json.dumps({"what": what, "row": row, "error": reason}, default=repr)
                        )
                        fh.write("\n")
                place = str(path)
            except OSError:
                pass
        if place == "standard error":
            print(f"stagelab engine: {what} refused by the database: {rows!r}", file=sys.stderr)
        if what == "events" and all(r.get("kind") == "store" for r in rows):
            return  # the report itself was refused: do not report the report
        self._report(
            "store",
            f"{len(rows)} {what} could not be stored ({reason}); they were set aside in {place}",
            level="error",
            data={"count": len(rows), "what": what, "error": reason, "path": place},
        )

    def follow_failures(self, failure: Exception | None) -> None:
        """After a flush: `failure` kept rows unwritten (None: everything was written).
        Says on standard error when writes start failing and work again, and records a
        warning once they have failed for `warn_after` seconds (and when they recover)."""
        now = time.monotonic()
        if failure is not None:
            self.last_error = f"{type(failure).__name__}: {str(failure).splitlines()[0][:300]}"
            if self._failing_since is None:
                self._failing_since = now
                print(
                    f"stagelab engine: database writes failed, retrying: {self.last_error}",
                    file=sys.stderr,
                )
            elif not self._warned and now - self._failing_since >= self.warn_after:
                self._warned = True
                pending = self._pending()
                self._report(
                    "store",
                    f"database writes have failed for {now - self._failing_since:.0f} s "
                    f"({self.last_error}); {pending} records are kept in memory and "
                    "retried every second",
                    level="warning",
                    data={"error": self.last_error, "pending": pending},
                )
            return
        if self._failing_since is not None:
            seconds = now - self._failing_since
            self._failing_since = None
            print(
                f"stagelab engine: database writes work again after {seconds:.0f} s",
                file=sys.stderr,
            )
            if self._warned:
                self._warned = False
                self._report(
                    "store",
                    f"database writes work again after {seconds:.0f} s; everything held was stored",
                    level="warning",
                    data={"recovered_after_s": round(seconds, 1)},
                )
