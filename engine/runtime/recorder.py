"""The engine's batched store writer and heartbeat.

The training loop only appends to in-memory lists; a background thread writes them to
SQLite about once a second, and beats the run's heartbeat in a transaction of its own. A
slow disk or a busy database therefore never stalls a training step.

Every point and event gets the run's next stream position (`seq`) when it is recorded, so
the live channel can hand a late or slow client exactly what it has not seen: the stored
part from the database, the rest from the buffer here (`snapshot_after`).

Failures (docs/engine.md, "The record"): a write the database refuses for now (locked,
busy, disk full: `OperationalError`) keeps its rows and is retried every flush; after
`warn_after` seconds a `store` warning event says so (live at once, stored once writes
work again). A batch refused for its content is split until the refused rows are found;
the others are stored, the refused ones are set aside in `runs/<id>/rejected.jsonl` with
an `error` event. A checkpoint row is written only once every point and event recorded
before it is stored. `close` tells whether everything was written. The writes and their
failures are engine/runtime/record_writes.py; the live listeners engine/runtime/listeners.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.runtime.listeners import Listeners
from engine.runtime.record_writes import StoreWrites
from engine.store import queries


def now_ms() -> int:
    """Wall time in milliseconds, as stored."""
    return int(time.time() * 1000)


class Recorder:
    """Buffers metric points, events, stage progress and checkpoint rows, and writes them
    in batches.

    Args:
        store: the open store.
        run_id: the run written to.
        flush_every: seconds between background writes.
        run_dir: where rows the database refuses are set aside (`rejected.jsonl`).
        warn_after: seconds of failing writes before a warning event is recorded.
    """

    def __init__(
        self,
        store: Any,
        run_id: str,
        *,
        flush_every: float = 1.0,
        run_dir: Path | None = None,
        warn_after: float = 5.0,
    ):
        self.store = store
        self.run_id = run_id
        self.flush_every = flush_every
        self.run_dir = run_dir
        self.warn_after = warn_after
        # Continues after every position stored, even those of points a resume deletes, so
        # positions never repeat within a run.
        self._next_seq = queries.max_seq(store, run_id) + 1
        self.first_seq = self._next_seq
        self._flushed_upto = self._next_seq - 1  # every item ≤ this is stored or set aside
        self._points: list[tuple[int, str, int, float, int, int]] = []
        self._events: list[dict[str, Any]] = []
        self._stages: dict[int, dict[str, Any]] = {}
        self._checkpoints: list[tuple[int, int, str, Callable[[], None] | None]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stagelab-recorder", daemon=True)
        self.listeners = Listeners(report=self.event)
        self._writes = StoreWrites(
            store,
            run_id,
            run_dir=run_dir,
            warn_after=warn_after,
            report=self.event,
            pending=lambda: self.pending,
        )

    def start(self) -> None:
        """Start the background writer."""
        self._thread.start()

    def close(self, timeout: float = 30.0) -> bool:
        """Stop the writer and write what is left, retrying for up to `timeout` seconds.

        Returns:
            True when everything recorded is stored (or set aside); False if the database
            kept refusing: the caller must not call the run finished.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        deadline = time.monotonic() + timeout
        while True:
            written = self.flush()  # a flush may queue a report of its own: go round
            if not self.pending:
                return True
            if time.monotonic() >= deadline:
                return False
            if not written:
                time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))

    # --- what the training side records -------------------------------------------------

    def metrics(self, stage_idx: int, step: int, values: dict[str, float]) -> None:
        """Record several metrics of one step (NaN and ±inf are values like any other)."""
        self._add_points([(stage_idx, k, step, float(v)) for k, v in values.items()])

    def series(self, stage_idx: int, key: str, steps: list[int], values: list[float]) -> None:
        """Record one metric at many steps (the losses read from the device at a log step)."""
        self._add_points(
            [(stage_idx, key, s, float(v)) for s, v in zip(steps, values, strict=True)]
        )

    def _add_points(self, points: list[tuple[int, str, int, float]]) -> None:
        wall = now_ms()
        with self._lock:
            seq = self._next_seq
            self._next_seq += len(points)
            rows = [(*p, wall, seq + i) for i, p in enumerate(points)]
            self._points.extend(rows)
        self.listeners.notify("metrics", {"points": rows})

    def event(
        self,
        kind: str,
        message: str,
        *,
        stage_idx: int | None = None,
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record an event (stage changes, evaluations, log lines)."""
        event = {
            "stage_idx": stage_idx,
            "level": level,
            "kind": kind,
            "message": message,
            "data": data,
            "wall_ms": now_ms(),
        }
        with self._lock:
            event["seq"] = self._next_seq
            self._next_seq += 1
            self._events.append(event)
        self.listeners.notify("event", event)

    def stage(self, idx: int, **fields: Any) -> None:
        """Queue an update of a stage row (status, progress, output); later fields win.

        Raises:
            TypeError: a field the stage row does not have (a misspelt one would otherwise
                be dropped when the row is written, `queries.check_stage_fields`).
            ValueError: a status that is not a `StageStatus`.
        """
        fields = queries.check_stage_fields(fields)
        with self._lock:
            self._stages.setdefault(idx, {}).update(fields)
        self.listeners.notify("stage", {"idx": idx, **fields})

    def checkpoint(
        self, stage_idx: int, step: int, path: str, on_stored: Callable[[], None] | None = None
    ) -> None:
        """Queue a checkpoint's row: written once everything recorded before it is stored
        (a resume from it then finds complete series); `on_stored` runs after that."""
        with self._lock:
            self._checkpoints.append((stage_idx, step, path, on_stored))

    @property
    def write_errors(self) -> int:
        """Failed write attempts, all kinds."""
        return self._writes.write_errors

    @property
    def set_aside(self) -> int:
        """Rows the database refused for their content."""
        return self._writes.set_aside

    @property
    def last_error(self) -> str | None:
        """The newest write error, as `Type: message`."""
        return self._writes.last_error

    @property
    def pending(self) -> int:
        """Rows recorded but not yet stored."""
        with self._lock:
            return (
                len(self._points) + len(self._events) + len(self._stages) + len(self._checkpoints)
            )

    # --- writing --------------------------------------------------------------------------

    def flush(self) -> bool:
        """Write everything buffered now; returns True if nothing is left unwritten."""
        with self._write_lock:
            self._writes.beat()
            with self._lock:
                points, self._points = self._points, []
                events, self._events = self._events, []
                stages, self._stages = self._stages, {}
                checkpoints, self._checkpoints = self._checkpoints, []
            taken = [p[5] for p in points[-1:]] + [e["seq"] for e in events[-1:]]
            failure: Exception | None = None
            kept_stages: dict[int, dict[str, Any]] = {}
            for idx, fields in sorted(stages.items()):
                left, exc = self._writes.write(
                    [(idx, fields)],
                    lambda rows: queries.upsert_stage(
                        self.store, self.run_id, rows[0][0], **rows[0][1]
                    ),
                    "stage update",
                )
                kept_stages.update(dict(left))
                failure = failure or exc
            points_left, exc = self._writes.write(
                points,
                lambda rows: queries.add_metrics(self.store, self.run_id, rows),
                "metric points",
            )
            failure = failure or exc
            events_left, exc = self._writes.write(
                events, lambda rows: queries.add_events(self.store, self.run_id, rows), "events"
            )
            failure = failure or exc
            checkpoints_left = checkpoints
            if not points_left and not events_left and checkpoints:
                checkpoints_left, exc = self._writes.write_checkpoints(checkpoints)
                failure = failure or exc
            with self._lock:
                self._points[:0] = points_left
                self._events[:0] = events_left
                for idx, fields in kept_stages.items():
                    self._stages[idx] = {**fields, **self._stages.get(idx, {})}
                self._checkpoints[:0] = checkpoints_left
                waiting = [p[5] for p in self._points[:1]] + [e["seq"] for e in self._events[:1]]
            if waiting:
                self._flushed_upto = min(waiting) - 1
            elif taken:
                self._flushed_upto = max([self._flushed_upto, *taken])
            unwritten = bool(points_left or events_left or kept_stages or checkpoints_left)
            self._writes.follow_failures(failure if unwritten else None)
            return not unwritten

    def dump_pending(self, path: Path) -> int:
        """Write what could not be stored to a JSON-lines file (nothing is lost silently);
        returns how many rows."""
        with self._lock:
            rows = [("point", p) for p in self._points] + [("event", e) for e in self._events]
            rows += [("stage", s) for s in self._stages.items()]
            rows += [("checkpoint", c[:3]) for c in self._checkpoints]
        with open(path, "a", encoding="utf-8") as fh:
            for kind, row in rows:
                fh.write(json.dumps({"what": kind, "row": row}, default=repr) + "\n")
        return len(rows)

    def snapshot_after(self, after: int) -> tuple[int, list[tuple[Any, ...]]]:
        """What a client that has everything up to `after` is missing, split where it lives.

        Returns (upto, buffered): items with `after < seq <= upto` are in the database
        (`queries.stream_after`); `buffered` are the not-yet-written ones after `after`, in
        the same item shapes. Taken between two flushes, so no item is in neither place.
        """
        with self._write_lock, self._lock:
            upto = self._flushed_upto
            points = [("point", p[5], *p[:5]) for p in self._points if p[5] > after]
            events = [
                (
                    "event",
                    e["seq"],
                    e["stage_idx"],
                    e["kind"],
                    e["level"],
                    e["message"],
                    e["data"],
                    e["wall_ms"],
                )
                for e in self._events
                if e["seq"] > after
            ]
        return upto, sorted(points + events, key=lambda item: item[1])

    @property
    def last_seq(self) -> int:
        """The newest stream position handed out."""
        return self._next_seq - 1

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_every):
            self.flush()
