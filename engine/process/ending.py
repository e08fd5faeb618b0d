"""How the engine process ends a run: the checkpoint in flight settled, another process's
own error found (the `rank*.error` files the non-owning processes write), the last records
written or kept in `unwritten.jsonl`, and the final status stored before the live channel
says goodbye."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from engine.runtime.checkpoint_writer import CheckpointWriter
from engine.runtime.recorder import Recorder
from engine.store import Store, queries

RANK_ERROR_WAIT_S = 0.5  # the longest the owner waits for another process's error file
RANK_ERROR_POLL_S = 0.02


def settle_checkpoint(writer: CheckpointWriter, recorder: Recorder) -> None:
    """On a failure: let the checkpoint in flight reach the disk and its row the recorder
    (a resume continues from it); if it fails as well, say so next to the first error."""
    try:
        writer.wait()
    except Exception as exc:  # noqa: BLE001 - the run fails already; this is one more fact
        recorder.event("error", f"{type(exc).__name__}: {exc}", level="error")


def failed_rank(run_dir: Path, wait_s: float = RANK_ERROR_WAIT_S) -> str | None:
    """The error another process of the run wrote before it exited, if one did.

    A failing process writes its file before it exits, but the owner may notice the failure
    first (the collective it waits in breaks as soon as the peer's socket closes), so the
    file is looked for until it is there and not empty, at most `wait_s`: a run whose peer
    wrote one is reported at once, one with none (a peer killed) after `wait_s`.
    """
    deadline = time.monotonic() + wait_s
    while True:
        for path in sorted(run_dir.glob("rank*.error")):
            text = path.read_text(errors="replace")
            if text or time.monotonic() >= deadline:  # empty: being written, look again
                return f"process {path.stem}: {text}"
        if time.monotonic() >= deadline:
            return None
        time.sleep(RANK_ERROR_POLL_S)


def close_recorder(recorder: Recorder, run_dir: Path) -> str | None:
    """Write what is left; None if everything is stored, else why not (and the rows are
    kept in `unwritten.jsonl`)."""
    # How long the last writes are retried before the run is called failed.
    if recorder.close(timeout=float(os.environ.get("STAGELAB_FINAL_FLUSH_S", "30"))):
        return None
    path = run_dir / "unwritten.jsonl"
    try:
        count = recorder.dump_pending(path)
        kept = f"; they are kept in {path}"
    except OSError as exc:
        count, kept = recorder.pending, f" and could not be kept either ({exc})"
    return f"{count} records could not be written to the database ({recorder.last_error}){kept}"


def end_run(store: Store, run_id: str, channel: Any, status: str, error: str | None = None) -> None:
    """Store the run's final status (and error); then the live channel says goodbye."""
    if channel is not None:
        channel.finish(status)  # from here on the channel writes no status of its own
    try:
        queries.set_run_status(store, run_id, status, error=error)
    except Exception as exc:  # noqa: BLE001 - the database is gone; say so and exit
        print(f"stagelab engine: could not record status '{status}': {exc}", file=sys.stderr)
    if channel is not None:
        channel.close()  # clients get `bye` once the final status is stored


def failure_sentence(exc: BaseException) -> str:
    """`Type: message` of a run's failure on one line (the first of a long message; the
    traceback in engine.log has all of it)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0] + (" …" if len(lines) > 1 else "") if lines else "(no message)"
    return f"{type(exc).__name__}: {message}"
