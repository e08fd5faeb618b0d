"""The notify hook (docs/cli.md, "Notifications"): the engine process runs the
workspace's `notify: {command: …}` when its run finishes or fails, and when a loss turns
NaN or infinite or a stage stops early. The engine runs it, not the window, so it works
headless, in the queue and on a target (the desktop's settings travel with the run).

The command gets STAGELAB_RUN, STAGELAB_STATUS, STAGELAB_EVENT (finished, failed, nan,
early_stop) and STAGELAB_MESSAGE. A command that fails or hangs is a warning event of the
run, never the run's end. A run shorter than `min_seconds` notifies nothing: what happens
before that is held, and sent once the run has lasted that long.
"""

from __future__ import annotations

import math
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from engine.store.settings import NotifySettings, notify_settings
from engine.store.status import RunStatus

HOOK_TIMEOUT_S = 60.0  # a hook still running after this is left alone, and said
END_EVENTS = {
    RunStatus.FINISHED: "finished",
    RunStatus.FAILED: "failed",
    RunStatus.INTERRUPTED: "failed",
}


def is_loss(key: str) -> bool:
    """A series whose non-finite value notifies: train/loss, eval/loss, train/<part>_loss."""
    return key.rsplit("/", 1)[-1].endswith("loss") or "/loss" in key


class Notifier:
    """A recorder listener that runs the hook; `ended` runs it for the run's end."""

    def __init__(self, settings: NotifySettings, run_id: str, recorder: Any):
        self.settings, self.run_id, self.recorder = settings, run_id, recorder
        self.t0 = time.monotonic()
        self.held: list[tuple[str, str]] = []  # (event, message) waiting for min_seconds
        # One thread runs the hooks in order, off the training thread (a slow Slack call
        # must not hold a step); started on the first hook.
        self.hooks: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.nan_said = False

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if not self.settings.command:
            return
        if kind == "metrics" and not self.nan_said:
            for _stage, key, step, value, *_ in payload["points"]:
                if is_loss(key) and not math.isfinite(value):
                    self.nan_said = True  # once a run: a diverged loss stays so
                    self.held.append(("nan", f"{key} is {value} at step {step}"))
                    break
        elif kind == "event" and payload.get("kind") == "early_stop":
            self.held.append(("early_stop", payload.get("message") or "early stopping"))
        if self.held and self._long_enough():
            for event, message in self.held:
                self._start(event, RunStatus.RUNNING, message)
            self.held.clear()

    def _long_enough(self) -> bool:
        return time.monotonic() - self.t0 >= self.settings.min_seconds

    def ended(self, status: str, error: str | None = None) -> None:
        """The run's end: the hook for a finished or failed run (not a stopped one), run
        to its end (at most HOOK_TIMEOUT_S) before the recorder closes."""
        event = END_EVENTS.get(status)
        if self.settings.command and event and self._long_enough():
            for held, message in self.held:
                self._start(held, RunStatus.RUNNING, message)
            message = error or f"run {self.run_id} {status}"
            self._start(event, status, message)
        if self.thread is not None:
            self.hooks.put(None)
            self.thread.join(HOOK_TIMEOUT_S * (self.hooks.qsize() + 1))

    def _start(self, event: str, status: str, message: str) -> None:
        env = dict(
            os.environ,
            STAGELAB_RUN=self.run_id,
            STAGELAB_STATUS=str(status),
            STAGELAB_EVENT=event,
            STAGELAB_MESSAGE=message,
        )
        self.hooks.put((event, env))
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="notify", daemon=True)
            self.thread.start()

    def _work(self) -> None:
        while (hook := self.hooks.get()) is not None:
            self._run(*hook)

    def _run(self, event: str, env: dict[str, str]) -> None:
        try:
            done = subprocess.run(
                self.settings.command,
                shell=True,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=HOOK_TIMEOUT_S,
            )
            if done.returncode == 0:
                return
            said = (done.stderr or done.stdout).strip().splitlines()
            why = f"exited {done.returncode}" + (f": {said[-1][:300]}" if said else "")
        except subprocess.TimeoutExpired:
            why = f"was still running after {HOOK_TIMEOUT_S:g} s and was stopped"
        except OSError as exc:
            why = f"could not start ({exc})"
        self.recorder.event(
            "notify",
            f"the notify command for '{event}' {why}; fix notify.command in the "
            "workspace's settings.yaml",
            level="warning",
        )


def attach_notifier(root: Path, run_id: str, recorder: Any) -> Notifier:
    """A Notifier for the run, listening to its recorder (a broken settings file is said
    once, as a warning event)."""
    settings = notify_settings(root)
    if settings.problem:
        recorder.event("notify", settings.problem, level="warning")
    notifier = Notifier(settings, run_id, recorder)
    recorder.listeners.append(notifier)
    return notifier
