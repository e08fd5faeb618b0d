"""The engine's batched store writer and heartbeat.

The training loop only appends to in-memory lists; a background thread writes them to
SQLite about once a second in one transaction, and beats the run's heartbeat. A slow disk
or a busy database therefore never stalls a training step.
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
        self._points: list[tuple[int, str, int, float, int]] = []
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
        wall = now_ms()
        with self._lock:
            self._points.extend((stage_idx, k, step, float(v), wall) for k, v in values.items())
        self._notify(
            "metrics", {"stage": stage_idx, "step": step, "values": values, "wall_ms": wall}
        )

    def series(self, stage_idx: int, key: str, steps: list[int], values: list[float]) -> None:
        """Record one metric at many steps (the losses read from the device at a log step)."""
        wall = now_ms()
        with self._lock:
            self._points.extend(
                (stage_idx, key, s, float(v), wall) for s, v in zip(steps, values, strict=True)
            )
        for s, v in zip(steps, values, strict=True):
            self._notify(
                "metrics", {"stage": stage_idx, "step": s, "values": {key: v}, "wall_ms": wall}
            )

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
                queries.heartbeat(self.store, self.run_id)
            except Exception as exc:  # noqa: BLE001 - a write error must never stop training
                self.write_errors += 1
                print(f"stagelab engine: database write failed, will retry: {exc}", file=sys.stderr)
                with self._lock:
                    self._points[:0] = points
                    self._events[:0] = events
                    for idx, fields in stages.items():
                        self._stages[idx] = {**fields, **self._stages.get(idx, {})}

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_every):
            self.flush()

    def _notify(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(kind, payload)
            except Exception:  # noqa: BLE001 - a broken live listener must not stop training
                pass
