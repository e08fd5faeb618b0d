"""The engine's batched store writer and heartbeat.

The training loop only appends to in-memory lists; a background thread writes them to
SQLite about once a second in one transaction, and beats the run's heartbeat. A slow disk
or a busy database therefore never stalls a training step.

Every point and event gets the run's next stream position (`seq`) when it is recorded, so
the live channel can hand a late or slow client exactly what it has not seen: the stored
part from the database, the rest from the buffer here (`snapshot_after`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.store import queries


def now_ms() -> int:
    """Wall time in milliseconds, as stored."""
    return int(time.time() * 1000)


class Recorder:
    """Buffers metric points, events and stage progress, and writes them in batches.

    Args:
        store: the open store.
        run_id: the run written to.
        flush_every: seconds between background writes.
    """

    def __init__(self, store: Any, run_id: str, *, flush_every: float = 1.0):
        self.store = store
        self.run_id = run_id
        self.flush_every = flush_every
        # Continues after every position stored, even those of points a resume deletes, so
        # positions never repeat within a run.
        self._next_seq = queries.max_seq(store, run_id) + 1
        self.first_seq = self._next_seq
        self._flushed_upto = self._next_seq - 1  # every item ≤ this is in the database
        self._points: list[tuple[int, str, int, float, int, int]] = []
        self._events: list[dict[str, Any]] = []
        self._stages: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stagelab-recorder", daemon=True)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.write_errors = 0

    def start(self) -> None:
        """Start the background writer."""
        self._thread.start()

    def close(self) -> None:
        """Stop the writer after a last flush."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()

    # --- what the training side records -------------------------------------------------

    def metrics(self, stage_idx: int, step: int, values: dict[str, float]) -> None:
        """Record several metrics of one step."""
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
        self._notify("metrics", {"points": rows})

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
        self._notify("event", event)

    def stage(self, idx: int, **fields: Any) -> None:
        """Queue an update of a stage row (status, progress, output); later fields win."""
        with self._lock:
            self._stages.setdefault(idx, {}).update(fields)
        self._notify("stage", {"idx": idx, **fields})

    # --- writing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered now, in one transaction per table."""
        with self._write_lock:
            with self._lock:
                points, self._points = self._points, []
                events, self._events = self._events, []
                stages, self._stages = self._stages, {}
            try:
                for idx, fields in sorted(stages.items()):
                    queries.upsert_stage(self.store, self.run_id, idx, **fields)
                if points:
                    queries.add_metrics(self.store, self.run_id, points)
                if events:
                    queries.add_events(self.store, self.run_id, events)
                done = [p[5] for p in points[-1:]] + [e["seq"] for e in events[-1:]]
                self._flushed_upto = max([self._flushed_upto, *done])
                queries.heartbeat(self.store, self.run_id)
            except Exception as exc:  # noqa: BLE001 - a write error must never stop training
                self.write_errors += 1
                print(f"stagelab engine: database write failed, will retry: {exc}", file=sys.stderr)
                with self._lock:
                    self._points[:0] = points
                    self._events[:0] = events
                    for idx, fields in stages.items():
                        self._stages[idx] = {**fields, **self._stages.get(idx, {})}

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

    def _notify(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(kind, payload)
            except Exception:  # noqa: BLE001 - a broken live listener must not stop training
                pass
