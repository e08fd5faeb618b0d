"""The queue runner: `stagelab queue run` (or `--detach`, which the window uses) starts the
queue's waiting plans as runs, here through engine.launch or on a target through
engine.remote, follows each through the store until it ends, and goes on past one that
fails or cannot start (the item keeps the sentence that says why).

One runner per workspace: it holds `<workspace>/queue.lock` (the kernel drops the lock
when the process dies). The runs it starts are detached engines: a runner that is stopped
or killed leaves them training, and the next runner follows them again.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.launch.runs import module_command, start_in_own_session, start_run
from engine.launch.served import engine_server_kept
from engine.queue.decide import gpu_set, startable
from engine.store import Store, Workspace, queries
from engine.store.queue import (
    QueueItem,
    busy_gpus,
    end_queue_item,
    list_queue,
    start_queue_item,
)
from engine.store.status import ENDED, QueueStatus, RunStatus

POLL_S = 0.5
LOCK_FILE = "queue.lock"
LOG_FILE = "queue.log"
MIRROR_CHECK_S = 10.0  # how often a target run's mirror is made sure of


class QueueBusy(RuntimeError):
    """Another queue runner holds the workspace's queue."""


def lock_queue(root: Path, tries: int = 10) -> Any:
    """The held lock of the workspace's queue (keep it open while running). Raises
    QueueBusy with the holder's pid when another runner has it."""
    handle = open(root / LOCK_FILE, "a+")  # noqa: SIM115 - held while the runner runs
    for attempt in range(tries):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt + 1 < tries:  # a window's runner_alive may hold it for a moment
                time.sleep(0.1)
    else:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise QueueBusy(
            f"a queue runner already runs in this workspace (pid {pid}); it starts what "
            "you add, `stagelab queue ls` shows it"
        )
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def runner_alive(root: Path) -> bool:
    """Whether a queue runner holds the workspace's queue now (a moment's probe of its
    lock, which leaves the holder's pid in the file alone)."""
    path = root / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def start_detached(root: Path) -> subprocess.Popen:
    """Start `python -m engine queue` in a session of its own (closing the window or the
    terminal does not stop it), its output going to `<workspace>/queue.log`."""
    cmd = [*module_command("engine"), "queue", "--workspace", str(root)]
    return start_in_own_session(cmd, root / LOG_FILE)


@dataclass
class Following:
    """A queue item whose run is under way."""

    item: QueueItem
    run_id: str
    proc: subprocess.Popen | None = None  # a local engine we started (reaped when done)
    mirror_checked: float = 0.0


class QueueRunner:
    """Runs the queue until no item waits or runs (or it is stopped)."""

    def __init__(self, workspace: Workspace, store: Store, say: Callable[[str], None] = print):
        self.workspace, self.store, self.say = workspace, store, say
        self.following: dict[int, Following] = {}
        self.stop_requested = False

    def run(self) -> int:
        """Run to the end; returns how many items failed."""
        failed = 0
        for item in list_queue(self.store, statuses=(QueueStatus.RUNNING,)):
            if item.run_id:  # left by a runner that was stopped: follow it again
                self.following[item.id] = Following(item, item.run_id)
                self.say(f"queue item {item.id}: following run {item.run_id} again")
            else:
                end_queue_item(
                    self.store,
                    item.id,
                    QueueStatus.FAILED,
                    error="its runner stopped while starting it; add the plan again",
                )
        while True:
            for item_id in list(self.following):
                ended = self._check(self.following[item_id])
                if ended is not None:
                    failed += ended == QueueStatus.FAILED
                    del self.following[item_id]
            if self.stop_requested:
                return failed
            waiting = list_queue(self.store, statuses=(QueueStatus.WAITING,))
            if not waiting and not self.following:
                return failed
            busy = busy_gpus(self.store)
            for f in self.following.values():
                busy |= gpu_set(f.item.gpus) if not f.item.target else set()
            for item in startable(waiting, len(self.following), busy):
                failed += self._start(item) == QueueStatus.FAILED
            time.sleep(POLL_S)

    # ---- starting ------------------------------------------------------------------
    def _start(self, item: QueueItem) -> str | None:
        """Start an item; FAILED (and the item marked so) when it cannot start."""
        try:
            run_id, proc = self._launch(item)
        except Exception as exc:  # noqa: BLE001 - any reason is the item's, the queue goes on
            problem = str(exc).strip() or type(exc).__name__
            end_queue_item(self.store, item.id, QueueStatus.FAILED, error=problem)
            self.say(f"queue item {item.id} ({item.plan_path}): not started: {problem}")
            return QueueStatus.FAILED
        if not start_queue_item(self.store, item.id, run_id):
            self.say(f"queue item {item.id} was removed while it started; run {run_id} goes on")
            return None
        self.following[item.id] = Following(item, run_id, proc)
        where = f" on {item.target}" if item.target else ""
        self.say(f"queue item {item.id} ({item.plan_path}): run {run_id}{where}")
        return None

    def _launch(self, item: QueueItem) -> tuple[str, subprocess.Popen | None]:
        """The run of an item and its local engine; raises with every problem."""
        from engine.spec.plan import read_plan_file

        path = Path(item.plan_path)
        if not path.is_file():
            raise RuntimeError(f"the plan file {path} is gone; add it again once it is back")
        text = read_plan_file(path)
        plan_dir = str(path.resolve().parent)
        if item.target:
            from engine.remote.runs import start_remote_run
            from engine.remote.targets import get_target

            target = get_target(self.store, item.target)
            started = start_remote_run(
                self.workspace,
                self.store,
                target,
                plan_text=text,
                plan_dir=plan_dir,
                gpus=item.gpus,
                source=path.name,
            )
            proc = None
        else:
            started = start_run(
                self.workspace,
                self.store,
                plan_text=text,
                plan_dir=plan_dir,
                gpus=item.gpus,
                detach=True,
                source=path.name,
            )
            proc = getattr(started, "proc", None)
        if started.problems:
            if started.run_id:  # recorded, then refused there: the run says so too
                raise RuntimeError(f"run {started.run_id}: " + "; ".join(started.problems))
            raise RuntimeError("; ".join(started.problems))
        return started.run_id, proc

    # ---- following -----------------------------------------------------------------
    def _check(self, f: Following) -> str | None:
        """Follow one item's run; its end (DONE or FAILED, stored) once the run ended."""
        starting = f.proc is not None and f.proc.poll() is None
        run = queries.get_run(self.store, f.run_id)
        status = run.status
        if f.item.target and status not in ENDED:
            self._keep_mirror(f)
            return None
        if status == RunStatus.QUEUED or (status == RunStatus.INTERRUPTED and starting):
            if starting:
                return None  # the engine imports torch before it claims the run
            status, error = RunStatus.FAILED, "its engine ended before it started; see engine.log"
        else:
            error = run.error
        if status not in ENDED:
            return None
        if status == RunStatus.FINISHED:
            end_queue_item(self.store, f.item.id, QueueStatus.DONE)
            self.say(f"queue item {f.item.id}: run {f.run_id} finished")
            return QueueStatus.DONE
        why = f"run {f.run_id} {status}" + (f": {error}" if error else "")
        end_queue_item(self.store, f.item.id, QueueStatus.FAILED, error=why)
        self.say(f"queue item {f.item.id}: {why}")
        return QueueStatus.FAILED

    def _keep_mirror(self, f: Following) -> None:
        """A target run is recorded here by its mirror: start it again if it went."""
        if time.monotonic() - f.mirror_checked < MIRROR_CHECK_S:
            return
        f.mirror_checked = time.monotonic()
        from engine.remote.mirror_process import start_mirror

        start_mirror(self.workspace, f.run_id)


def run_queue(root: Path, say: Callable[[str], None] = print) -> int:
    """The queue runner's process: 0 when every item ended done, 1 when one failed, 2 when
    another runner holds the queue."""
    workspace = Workspace.open(root)
    try:
        lock = lock_queue(workspace.root)
    except QueueBusy as exc:
        say(f"stagelab queue: {exc}")
        return 2
    store = Store.open(workspace.db_path)
    runner = QueueRunner(workspace, store, say)

    def on_signal(_signum: int, _frame: Any) -> None:
        runner.stop_requested = True  # the runs started go on; the next runner follows them

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Runs after the first start forked from a ready engine (engine.launch.served).
        with engine_server_kept():
            failed = runner.run()
    finally:
        lock.close()
    say("queue: stopped; its runs go on" if runner.stop_requested else "queue: nothing left to run")
    return 1 if failed else 0
