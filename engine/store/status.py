"""Run and stage statuses, and the effective status of a run: a run whose engine is gone is
`interrupted`, never "running" forever.

The statuses are `StrEnum`s: a member is the very string the database, the JSON of
`show --json` and the live channel carry (`RunStatus.RUNNING == "running"`), so a status
read back as a plain string compares equal and nothing on disk or on the wire changes.
"""

from __future__ import annotations

import os
import socket
import time
from enum import StrEnum


class RunStatus(StrEnum):
    """A run's stored status (`runs.status`)."""

    QUEUED = "queued"  # recorded, its engine not started yet
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"  # a stop was asked; the engine ends after its current step
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the engine is gone without saying how it ended


# An engine holds the run (its process should be alive).
LIVE = frozenset({RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.STOPPING})
# Not ended yet: live, or waiting for its engine to claim it.
NOT_ENDED = LIVE | {RunStatus.QUEUED}
# Ended; no engine will write to it again unless it is resumed.
ENDED = frozenset({RunStatus.STOPPED, RunStatus.FINISHED, RunStatus.FAILED, RunStatus.INTERRUPTED})
# `stagelab resume` starts a new engine for these (a paused run is resumed live instead).
RESUMABLE = frozenset({RunStatus.INTERRUPTED, RunStatus.STOPPED, RunStatus.FAILED})


class StageStatus(StrEnum):
    """A stage's stored status (`stages.status`)."""

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    SKIPPED = "skipped"
    REUSED = "reused"  # the stage cache gave it another run's output; nothing trained


# A stage whose output exists: trained here, or reused from another run.
STAGE_DONE = frozenset({StageStatus.FINISHED, StageStatus.REUSED})


class SweepStatus(StrEnum):
    """A sweep's stored status (`sweeps.status`)."""

    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


class TrialStatus(StrEnum):
    """A sweep trial's stored status (`sweep_trials.status`)."""

    RUNNING = "running"
    FINISHED = "finished"
    PRUNED = "pruned"
    FAILED = "failed"
    STOPPED = "stopped"


HEARTBEAT_TIMEOUT_MS = 10_000


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    if os.name == "posix":
        # A zombie (dead, not yet reaped by its parent) counts as gone.
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def effective_status(
    status: str,
    pid: int | None,
    host: str | None,
    heartbeat_ms: int | None,
    now_ms: int | None = None,
    *,
    mirrored: bool = False,
) -> str:
    """`interrupted` for a live-looking run whose process is gone, else the stored status.

    On the engine's own host a missing pid tells at once; elsewhere a heartbeat older than
    10 s does. A run that trains on a target (`mirrored`) has the status its mirror last
    stored: the engine is not ours to watch, and the next contact tells (issue 30).
    """
    if status not in LIVE or mirrored:
        return status
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if pid is not None and host == socket.gethostname() and not pid_alive(pid):
        return RunStatus.INTERRUPTED
    if heartbeat_ms is None or now_ms - heartbeat_ms > HEARTBEAT_TIMEOUT_MS:
        return RunStatus.INTERRUPTED
    return status


class QueueStatus(StrEnum):
    """A queued plan's status (`queue_items.status`): waiting its turn, running as
    `run_id`, done (its run finished), failed (its run did not finish, or it could not
    start: `error` says why), removed (`stagelab queue rm`; kept for the record)."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REMOVED = "removed"
