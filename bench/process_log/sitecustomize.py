"""Logs every Python process's CPU at its exit: put this folder first on PYTHONPATH and set
STAGELAB_PROCESS_LOG=FILE, then run the suite (bench/process_costs.py sums the file).

One JSON line per process that exits normally: the test it ran under (pytest's
PYTEST_CURRENT_TEST, which subprocesses inherit), its command line, its own CPU seconds and
when this interpreter started. A fork shares its parent's start, so forks (the engine
server's engines) and fresh interpreters can be told apart. Processes killed by a signal
write nothing."""

import atexit
import json
import os
import sys
import time

_LOG = os.environ.get("STAGELAB_PROCESS_LOG")
_STARTED = time.time()


def _write() -> None:
    try:
        times = os.times()
        line = json.dumps(
            {
                "test": os.environ.get("PYTEST_CURRENT_TEST", ""),
                "argv": [sys.executable, *sys.argv[:5]],
                "cpu": round(times.user + times.system, 3),
                "pid": os.getpid(),
                "start": _STARTED,
            }
        )
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except Exception:  # noqa: BLE001 - a measurement must never change a process's exit
        pass


if _LOG:
    atexit.register(_write)
