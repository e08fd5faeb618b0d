"""Where a run's live channel listens, and the owner-only connection file that says so.

A Unix-domain socket (0600) in a private directory (0700, ours) where the platform has
them; loopback TCP otherwise. Either way the connection file `runs/<id>/channel.json`
(0600) holds the address and a per-run secret token that every client must present.
Stdlib only: clients import this too.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any

CONNECTION_FILE = "channel.json"


class ChannelUnavailable(RuntimeError):
    """The run has no live channel (its engine is not running); the message says why."""


def use_unix_sockets() -> bool:
    """Unix sockets unless the platform lacks them (or STAGELAB_CHANNEL=tcp asks for TCP)."""
    return hasattr(socket, "AF_UNIX") and os.environ.get("STAGELAB_CHANNEL") != "tcp"


def private_socket_dir() -> Path:
    """A directory only this user can enter: $XDG_RUNTIME_DIR/stagelab or
    <tmp>/stagelab-<uid>. Refuses one that someone else owns or others can open.

    Socket paths are limited to ~100 bytes, so the socket cannot live in the workspace.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and Path(base).is_dir():
        folder = Path(base) / "stagelab"
    else:
        folder = Path(tempfile.gettempdir()) / f"stagelab-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ChannelUnavailable(f"{folder} is not a directory of this user; remove it")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)
    return folder


def write_connection_file(run_dir: Path, info: dict[str, Any]) -> Path:
    """Write `channel.json` readable by the owner only (created 0600, then renamed)."""
    path = run_dir / CONNECTION_FILE
    tmp = run_dir / f".{CONNECTION_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    os.replace(tmp, path)
    return path


def read_connection_file(run_dir: Path) -> dict[str, Any]:
    """The connection details of the run's live engine.

    Raises:
        ChannelUnavailable: if there is none (the engine is not running) or it is unreadable.
    """
    path = Path(run_dir) / CONNECTION_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChannelUnavailable("the run's engine is not running (no live channel)") from None
    except (OSError, ValueError) as exc:
        raise ChannelUnavailable(f"cannot read {path}: {exc}") from None
    if not isinstance(info, dict) or "token" not in info or "transport" not in info:
        raise ChannelUnavailable(f"{path} is not a Stagelab connection file")
    return info


def describe(info: dict[str, Any]) -> str:
    """The address as recorded on the run row: unix:/path or tcp:127.0.0.1:port."""
    if info["transport"] == "unix":
        return f"unix:{info['path']}"
    return f"tcp:{info['host']}:{info['port']}"
