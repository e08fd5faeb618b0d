"""The effective status of a run: a run whose engine is gone is `interrupted`, never
"running" forever."""

from __future__ import annotations

import os
import socket
import time

LIVE_STATUSES = ("running", "paused", "stopping")
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
) -> str:
    """`interrupted` for a live-looking run whose process is gone, else the stored status.

    On the engine's own host a missing pid tells at once; elsewhere a heartbeat older than
    10 s does.
    """
    if status not in LIVE_STATUSES:
        return status
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if pid is not None and host == socket.gethostname() and not pid_alive(pid):
        return "interrupted"
    if heartbeat_ms is None or now_ms - heartbeat_ms > HEARTBEAT_TIMEOUT_MS:
        return "interrupted"
    return status
