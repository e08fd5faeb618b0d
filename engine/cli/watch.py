"""`stagelab watch|pause|stop RUN` and the live half of `resume`: the terminal as a client of
a run's live channel (no torch here, only the store and the channel client)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engine.channel.address import ChannelUnavailable
from engine.channel.client import ChannelClient, ChannelClosed, RunFollower
from engine.channel.messages import (
    Bye,
    Event,
    Idle,
    Metrics,
    Progress,
    ServerMessage,
    StageUpdate,
    Status,
    Welcome,
)
from engine.channel.progress import StageSteps, run_done_and_total, with_progress
from engine.cli.cli_args import LiveError  # main catches it without importing this module
from engine.cli.follow import SHOWN, planned_steps_of
from engine.store import Store, queries
from engine.store.status import ENDED, RunStatus

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
ATTACH_WAIT_S = 60.0  # a mirror's first contact: an SSH login, a pull, the forward
LOUD_EVENTS = ("stage", "eval", "early_stop", "checkpoint", "resume", "error", "unfreeze")


def _run(args: argparse.Namespace) -> tuple[Store, Any]:
    from engine.cli.cli_args import (
        open_workspace,
    )

    _, store = open_workspace(args)
    try:
        return store, queries.get_run(store, args.run)
    except (queries.NotFound, queries.Ambiguous) as exc:
        raise LiveError(str(exc)) from None


def attached(store: Store, run: Any) -> Any:
    """A run on a target is followed through its local mirror: start it when none runs
    (re-attach, back-filling what was missed); the run as the mirror left it."""
    from engine.remote.mirror_process import attach

    if attach(run, wait=ATTACH_WAIT_S, say=lambda line: print(line, file=sys.stderr)):
        return run
    return queries.get_run(store, run.id)


def _connect(run: Any, name: str) -> ChannelClient:
    try:
        return ChannelClient.for_run(run.run_dir, name=name)
    except (ChannelUnavailable, ChannelClosed) as exc:
        raise LiveError(
            f"run {run.id} is not running ({run.status}): {exc}"
            + (
                f"; continue it with: stagelab resume {run.id}"
                if run.status != RunStatus.FINISHED
                else ""
            )
        ) from None


def send_command(run: Any, command: str, *, wait: bool = False, timeout: float = 600) -> int:
    """Send a control command to a live run; with `wait`, until the engine exits."""
    client = _connect(run, f"stagelab {command}")
    try:
        ack = client.control(command)
        print(f"run {run.id}: {ack.message}")
        if not wait:
            return EXIT_OK
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = client.receive(1.0)
            if isinstance(message, Bye):
                print(f"run {run.id} {message.status}")
                return EXIT_OK
    except ChannelClosed:
        return EXIT_OK  # the engine exited right after acknowledging
    finally:
        client.close()
    print(f"run {run.id} has not ended after {timeout:.0f} s", file=sys.stderr)
    return EXIT_FAILED


def cmd_pause(args: argparse.Namespace) -> int:
    """`stagelab pause RUN`: hold training after the current step."""
    store, run = _run(args)
    return send_command(attached(store, run), "pause")


def cmd_stop(args: argparse.Namespace) -> int:
    """`stagelab stop RUN`: checkpoint, then end the run as `stopped`."""
    store, run = _run(args)
    from engine.remote.slurm_runs import job_of

    if job_of(run) is not None:
        return _stop_job(store, run)
    return send_command(attached(store, run), "stop", wait=not args.no_wait)


def _stop_job(store: Store, run: Any) -> int:
    """A Slurm run: stopped live after a checkpoint if it runs, its job cancelled if it
    waits or is still there after the grace (engine/remote/slurm.py `cancel`)."""
    from engine.remote.shell import ShellError
    from engine.remote.slurm import SlurmError
    from engine.remote.slurm_runs import job_of, stop_run

    def ask_stop() -> bool:
        try:
            return send_command(attached(store, run), "stop", wait=True) == EXIT_OK
        except LiveError:
            return False

    try:
        state = stop_run(store, run, ask_stop)
    except (SlurmError, ShellError, LookupError) as exc:
        raise LiveError(f"run {run.id}'s Slurm job could not be stopped: {exc}") from None
    said = f"{state.state.lower()}" if state is not None else "gone"
    print(f"run {run.id}: Slurm job {job_of(run)} {said}")
    return EXIT_OK


def resume_live(run: Any) -> int:
    """`stagelab resume RUN` of a paused run: training continues in the same engine."""
    return send_command(run, "resume")


def cmd_watch(args: argparse.Namespace) -> int:
    """`stagelab watch RUN`: progress bars and metrics of a live run until it ends."""
    store, run = _run(args)
    run = attached(store, run)
    follower = RunFollower(Path(run.run_dir), name="stagelab watch")
    try:
        welcome = _first_contact(store, run, follower)
    except (ChannelUnavailable, ChannelClosed):
        run = queries.get_run(store, run.id)
        print(f"run {run.id} is not running: {run.status}")
        return EXIT_OK if run.status != RunStatus.FAILED else EXIT_FAILED
    status = TerminalView(welcome, sys.stderr, planned=planned_steps_of(store, run.id)).follow(
        follower
    )
    from engine.remote.mirror_process import wait_until_mirrored

    wait_until_mirrored(run)
    print(f"run {run.id} {status}")
    return EXIT_FAILED if status == RunStatus.FAILED else EXIT_OK


def _first_contact(store: Store, run: Any, follower: RunFollower, wait: float = 15.0) -> Welcome:
    """The follower's first welcome. A run the record calls live is tried for `wait`
    seconds: a mirror that was just started may drop its first forward and write the
    connection file again (seen in CI: `watch` gave up on a running run), and an engine
    between two stages reopens its channel."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return follower.connect()
        except (ChannelUnavailable, ChannelClosed):
            run = queries.get_run(store, run.id)
            if run.status in ENDED or time.monotonic() > deadline:
                raise
            time.sleep(0.25)


class TerminalView:
    """Progress bars (one per stage and one overall) fed by channel messages, typed at the
    client (`engine.channel.messages`)."""

    def __init__(self, welcome: Welcome, out: Any, planned: list[int | None] = ()):
        self.out = out
        self.names = {s.idx: s.name or str(s.idx) for s in welcome.stages}
        self.totals = {s.idx: s.total_steps for s in welcome.stages}
        # Stage rows as the channel tells them, and the plan's step counts: the overall bar
        # counts by the rule the window and `stagelab run` use (`run_done_and_total`).
        self.stages = {
            s.idx: StageSteps(s.status, s.total_steps, s.steps_done) for s in welcome.stages
        }
        self.planned = list(planned)
        self.live: Progress | None = None
        self.latest: dict[int, dict[str, float]] = {}
        self.bars: dict[int, tqdm] = {}
        self.overall = tqdm(total=0, desc="overall", position=0, file=out, unit="step")

    def follow(self, follower: RunFollower) -> str:
        try:
            for message in follower.messages():
                self.show(message)
        finally:
            follower.close()
            for bar in [*self.bars.values(), self.overall]:
                bar.close()
        return follower.status or "ended"

    def show(self, message: ServerMessage | Idle) -> None:
        if isinstance(message, StageUpdate):
            idx = message.idx
            self.names[idx] = message.name or self.names.get(idx, str(idx))
            if message.total_steps:
                self.totals[idx] = message.total_steps
            row = self.stages.get(idx, StageSteps())
            self.stages[idx] = StageSteps(
                status=message.status or row.status,
                total_steps=message.total_steps or row.total_steps,
                steps_done=row.steps_done if message.steps_done is None else message.steps_done,
            )
            self._overall()
        elif isinstance(message, Metrics):
            for point in message.points:
                if point.key in SHOWN:
                    self.latest.setdefault(point.stage, {})[point.key] = point.value
        elif isinstance(message, Event) and message.kind in LOUD_EVENTS:
            tqdm.write(f"[{self.names.get(message.stage, '-')}] {message.message}", file=self.out)
        elif isinstance(message, Status):
            tqdm.write(f"status: {message.status}", file=self.out)
        elif isinstance(message, Progress) and message.stage is not None:
            self._progress(message)

    def _progress(self, message: Progress) -> None:
        idx = message.stage
        total = message.total or self.totals.get(idx)
        if total and idx not in self.bars:
            self.bars[idx] = tqdm(
                total=total,
                desc=f"[{idx}] {self.names.get(idx, idx)}",
                position=idx + 1,
                file=self.out,
                unit="step",
            )
        bar = self.bars.get(idx)
        if bar is not None:
            bar.update(min(message.step or 0, bar.total) - bar.n)
            values = self.latest.get(idx, {})
            bar.set_postfix_str(", ".join(f"{k} {v:.4g}" for k, v in values.items()))
        self.live = message
        self._overall()

    def overall_steps(self) -> tuple[int, int | None]:
        """(steps done, total) of the run: stage rows, the latest progress and the plan."""
        current = self.live.stage if self.live is not None else None
        return run_done_and_total(
            with_progress(
                replace(s, planned_steps=self.planned[i] if i < len(self.planned) else None),
                self.live if i == current else None,
            )
            for i, s in sorted(self.stages.items())
        )

    def _overall(self) -> None:
        done, total = self.overall_steps()
        if total is None:  # a plan that no longer parses: the engine's figure, at least
            total = max(done, (self.live.overall_total if self.live else None) or 0)
        self.overall.total = total
        self.overall.update(done - self.overall.n)
