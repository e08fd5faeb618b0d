"""What the engine process sets up around a run before its first stage: the run's OS lock,
the device, Ctrl-C and SIGTERM, the live channel, and library warnings as run events."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
from pathlib import Path
from typing import Any

import torch

from engine.runtime.context import Control
from engine.runtime.distributed import SINGLE, Dist
from engine.runtime.recorder import Recorder


class RunLocked(RuntimeError):
    """Another engine process holds this run."""


def lock_run(run_dir: Path) -> Any:
    """Hold an exclusive OS lock on the run folder for the life of this process.

    The kernel drops the lock when the process dies, even by SIGKILL, so a crashed run can
    be resumed at once while a live one can never be taken twice.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / "engine.lock", "a+")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunLocked("another engine process is already training this run") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    # A fork of the engine (a batch-loader worker) shares the locked file and would hold
    # the lock after the engine dies, until it notices (seconds): a resume right after a
    # SIGKILL was refused. Each child closes its copy (never unlocking: that is the
    # parent's lock too).
    os.register_at_fork(after_in_child=lambda: handle.closed or handle.close())
    return handle


def pick_device(gpus: str) -> torch.device:
    """The device for the run's GPU choice ('cpu' or '0,1': the first one is used)."""
    if not gpus or gpus == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(f"cuda:{gpus.split(',')[0].strip()}")


def install_signal_handlers(control: Control, dist: Dist = SINGLE) -> None:
    """Ctrl-C and SIGTERM ask for a checkpoint and a clean stop; a second Ctrl-C quits
    (one process only: under torchrun a Ctrl-C reaches the owner twice, from the terminal
    and from the launcher). In a Slurm job, SIGUSR1 stops the same way for a requeue."""

    def on_signal(signum: int, _frame: Any) -> None:
        if control.stop_requested and not dist.active:
            raise KeyboardInterrupt
        control.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if os.environ.get("SLURM_JOB_ID"):
        # The batch script's word before the time limit (engine/remote/slurm_script.py):
        # checkpoint and stop; the job is requeued and resumes from that checkpoint.
        signal.signal(signal.SIGUSR1, lambda *_: control.stop_for_requeue())


def open_channel(recorder: Recorder, control: Control, run_dir: Path, device: torch.device):
    """Serve the run's live channel; a run trains on (headless) if the socket cannot open."""
    from engine.channel.gpus import gpu_monitor
    from engine.channel.server import ChannelServer

    server = ChannelServer(recorder, control, run_dir, gpu_monitor=gpu_monitor(device))
    try:
        server.start()
    except OSError as exc:
        recorder.event(
            "channel", f"no live channel ({exc}); the run is recorded as usual", level="warning"
        )
        return None
    recorder.listeners.append(server.publish)
    return server


class _EventLogHandler(logging.Handler):
    """Warnings of the libraries (transformers, datasets) become `log` events of the run."""

    def __init__(self, recorder: Recorder):
        super().__init__(logging.WARNING)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = "error" if record.levelno >= logging.ERROR else "warning"
            self.recorder.event("log", f"{record.name}: {record.getMessage()}", level=level)
        except Exception:  # noqa: BLE001 - logging must never break training
            pass


def forward_logs(recorder: Recorder) -> None:
    """Send library warnings to the run's events (and so to the window's log console)."""
    handler = _EventLogHandler(recorder)
    for name in ("transformers", "datasets", "engine"):
        logging.getLogger(name).addHandler(handler)
