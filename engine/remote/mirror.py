"""The mirror: a run that trains elsewhere, recorded into the local store as it streams.

It follows the remote engine's live channel and writes every point, event, stage row and
status into the local store about once a second (`mirror_store.write`, one transaction,
each item once by its stream position). When the channel is unavailable or drops, it
pulls what it missed from the remote store (`python -m engine record`, record_dump.py)
and connects again. A remote engine that is gone makes the local run `interrupted` at the
next contact; an ended run is pulled to its last item, and its final status is written
only once the local record holds as many points and events as the remote one.

The transport is injected: `connect()` gives the live channel's connection details (over
SSH, a forward of the remote socket), `pull(after)` the record's JSON lines.
`LocalTransport` mirrors a run of another workspace on this machine (tests, and the
measure of the mirror itself). The detached mirror process is mirror_process.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import OperationalError

from engine.channel.address import ChannelUnavailable, read_connection_file, write_connection_file
from engine.channel.client import ChannelClient, ChannelClosed
from engine.channel.messages import Bye, CaughtUp, Event, Metrics, StageUpdate, Status
from engine.remote import mirror_store
from engine.remote.record_dump import parse_record
from engine.store.db import Store
from engine.store.status import ENDED, LIVE, RunStatus

STATE_FILE = "mirror.json"  # which remote engine the local live items came from


class TransportError(ConnectionError):
    """The target cannot be reached now (the mirror tries again)."""


class Transport(Protocol):
    """How a mirror reaches the remote run."""

    def connect(self) -> dict[str, Any]:
        """The live channel's connection details, reachable from here.

        Raises:
            ChannelUnavailable: no live engine (not started yet, or ended).
            TransportError: the target cannot be reached.
        """
        ...

    def pull(self, after: int) -> Iterable[str]:
        """The record's lines after stream position `after` (record_dump.py).

        Raises:
            TransportError: the target cannot be reached.
        """
        ...

    def close(self) -> None:
        """Let go of what `connect` opened."""
        ...


def record_command(python: str, workspace: str, run_id: str, after: int) -> list[str]:
    """The remote side of a pull."""
    after_arg = ["--after", str(after)]
    return [python, "-m", "engine", "record", "--workspace", workspace, "--run", run_id, *after_arg]


class LocalTransport:
    """A run of another workspace on this machine: its channel file as it is, pulls by the
    record command in a process of its own (as over SSH, minus the connection)."""

    def __init__(self, workspace: str | Path, run_id: str, python: str = sys.executable):
        self.workspace, self.run_id, self.python = Path(workspace), run_id, python

    def connect(self) -> dict[str, Any]:
        return read_connection_file(self.workspace / "runs" / self.run_id)

    def pull(self, after: int) -> list[str]:
        cmd = record_command(self.python, str(self.workspace), self.run_id, after)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise TransportError("the record command did not answer within 300 s") from None
        if proc.returncode not in (0, 2):
            raise TransportError(f"the record command failed: {proc.stderr.strip()[-300:]}")
        return proc.stdout.splitlines()

    def close(self) -> None:
        pass


class Mirror:
    """Mirrors one run into a local store.

    Args:
        store: the local store (the run is recorded there with the remote run's id).
        run_id: the run, the same id on both sides.
        transport: how the remote run is reached.
        run_dir: the local run folder: the live channel's details are written there while
            connected (so `stagelab watch` and the window follow the run unchanged), and
            the remote engine whose items were received live.
        flush_every: seconds between local writes of live items.
        give_up_after: seconds without reaching the target before the mirror ends (the
            run goes on there; the next `watch` or window starts a mirror again).
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        transport: Transport,
        *,
        run_dir: Path | None = None,
        flush_every: float = 1.0,
        poll_every: float = 2.0,
        give_up_after: float = 600.0,
        silence_s: float = 10.0,
        log: Callable[[str], None] | None = None,
    ):
        self.store, self.run_id, self.transport = store, run_id, transport
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.flush_every, self.poll_every = flush_every, poll_every
        self.give_up_after, self.silence_s = give_up_after, silence_s
        self.log = log or (lambda line: None)
        self.stop = threading.Event()
        self.lags_ms: list[int] = []  # remote point's wall time -> stored here, live points
        self.status: str | None = None
        self.client: ChannelClient | None = None
        self.live_engine = self._state().get("engine_id")

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> str | None:
        """Mirror until the run ends (its final status), the target stays out of reach
        for `give_up_after` seconds, or `stop` is set (None)."""
        unreachable_since: float | None = None
        try:
            while not self.stop.is_set():
                try:
                    ended = self.pull()
                    if ended is not None:
                        return ended
                    if self.status == RunStatus.QUEUED:
                        raise ChannelUnavailable("its engine has not started yet")
                    info = self.transport.connect()
                    outcome = self.follow(info)
                except ChannelUnavailable:
                    unreachable_since = None
                    self.stop.wait(self.poll_every)  # queued, or about to end
                    continue
                except OperationalError as exc:  # the local database, busy: try again
                    self.log(f"the local record could not be written now: {exc}")
                    self.stop.wait(self.poll_every)
                    continue
                except (TransportError, OSError) as exc:
                    now = time.monotonic()
                    unreachable_since = unreachable_since or now
                    self.log(f"target unreachable: {exc}")
                    if now - unreachable_since > self.give_up_after:
                        return None
                    self.stop.wait(min(self.poll_every * 2, 15.0))
                    continue
                unreachable_since = None
                self.log(f"the live channel {outcome}")
            return None
        finally:
            self._forget_channel()
            self.transport.close()

    def pull(self, again: bool = True) -> str | None:
        """Store what the remote store has after the local position; the run's final
        status once it has ended and everything is here (else None). `again`: pull the
        whole record once more when the counts differ at the end."""
        record = parse_record(
            self.transport.pull(mirror_store.local_cursor(self.store, self.run_id))
        )
        if record["missing"]:
            raise ChannelUnavailable("the run is not recorded on the target yet")
        if not record["complete"] or record["run"] is None:
            raise TransportError("the record came incomplete")
        run = record["run"]
        status = run["status"]
        if status in ENDED and not run["alive"]:
            if mirror_store.local_cursor(self.store, self.run_id) > run["max_seq"]:
                # Sent live, never stored there: the remote record is the truth.
                mirror_store.drop_after(self.store, self.run_id, run["max_seq"])
        mirror_store.write(self.store, self.run_id, record["items"], record["stages"])
        # The run-row fields as the target has them; status, its end and the heartbeat below.
        said_below = ("status", "ended_ms", "heartbeat_ms")
        fields = {k: run[k] for k in mirror_store.RUN_FIELDS if k in run and k not in said_below}
        if status not in ENDED:
            if status in LIVE:
                fields["heartbeat_ms"] = _now_ms()
            mirror_store.write(self.store, self.run_id, run={**fields, "status": status})
            self.status = status
            return None
        if not self._complete(run):
            if again:
                self.log("the local record differs from the target's; pulling it whole again")
                mirror_store.drop_after(self.store, self.run_id, 0)
                return self.pull(again=False)
            self.log("the target's record has points without a stream position; kept as pulled")
        fields.update(status=status, ended_ms=run.get("ended_ms"))
        mirror_store.write(self.store, self.run_id, run=fields)
        self.status = status
        return status

    def _complete(self, run: dict[str, Any]) -> bool:
        points, events = mirror_store.counts(self.store, self.run_id)
        return points == run["points"] and events == run["events"]

    # -- following the live channel -----------------------------------------------------

    def follow(self, info: dict[str, Any]) -> str:
        """Record the live stream until it ends ("bye") or drops ("dropped").

        Raises:
            ChannelUnavailable: no engine answers there.
        """
        client = ChannelClient(info, name="stagelab mirror")
        try:
            welcome = client.connect()
        except ChannelClosed as exc:
            raise ChannelUnavailable(str(exc)) from None
        self.client = client
        cursor = mirror_store.local_cursor(self.store, self.run_id)
        if welcome.engine_id != self.live_engine:
            if self.live_engine is not None and cursor >= welcome.first_seq:
                # A new engine numbers on from what the old one stored: what we hold
                # beyond that came live from the old one and was never stored there.
                mirror_store.drop_after(self.store, self.run_id, welcome.first_seq - 1)
                cursor = welcome.first_seq - 1
            self.live_engine = welcome.engine_id
            self._save_state()
        stages = {s.idx: _stage_fields(s) for s in welcome.stages}
        mirror_store.write(self.store, self.run_id, stages=stages)
        if self.run_dir is not None:
            write_connection_file(self.run_dir, info)
        client.subscribe(cursor)
        self.log(f"following engine {welcome.engine_id} after stream position {cursor}")
        items: list[tuple[Any, ...]] = []
        stages, run = {}, {}
        live, walls = False, []  # the lag counts points that came live, not the catch-up
        last_flush = heard = time.monotonic()
        outcome = "dropped"
        try:
            while not self.stop.is_set():
                try:
                    message = client.receive(self.flush_every / 2)
                except ChannelClosed:
                    break
                now = time.monotonic()
                if message is not None:
                    heard = now
                if isinstance(message, Metrics):
                    items += [("point", *p) for p in message.points]
                    walls += [p.wall_ms for p in message.points] if live else []
                elif isinstance(message, CaughtUp):
                    live = True
                elif isinstance(message, Event):
                    items.append(("event", *_event_item(message)))
                elif isinstance(message, StageUpdate):
                    stages.setdefault(message.idx, {}).update(_stage_fields(message))
                elif isinstance(message, Status) and message.status not in ENDED:
                    run["status"] = message.status
                elif isinstance(message, Bye):
                    outcome = "bye"
                    break
                if now - heard > self.silence_s:
                    break  # a connection that hangs without closing
                if now - last_flush >= self.flush_every:
                    self._flush(items, stages, run, walls)
                    items, stages, run, walls = [], {}, {}, []
                    last_flush = now
        finally:
            self.client = None
            client.close()
            self._flush(items, stages, run, walls)
        return outcome

    def _flush(self, items: list, stages: dict, run: dict, walls: list[int]) -> None:
        run = {**run, "heartbeat_ms": _now_ms()}
        mirror_store.write(self.store, self.run_id, items, stages, run)
        stored = _now_ms()
        self.lags_ms += [stored - wall for wall in walls]
        del self.lags_ms[:-100_000]

    # -- the local run folder -------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        if self.run_dir is None:
            return {}
        try:
            return json.loads((self.run_dir / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        if self.run_dir is not None:
            path = self.run_dir / STATE_FILE
            path.write_text(json.dumps({"engine_id": self.live_engine}), encoding="utf-8")

    def _forget_channel(self) -> None:
        if self.run_dir is not None:
            (self.run_dir / "channel.json").unlink(missing_ok=True)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _event_item(e: Event) -> tuple[Any, ...]:
    return e.seq, e.stage, e.kind, e.level, e.message, e.data, e.wall_ms


def _stage_fields(update: StageUpdate) -> dict[str, Any]:
    names = (
        "name",
        "kind",
        "status",
        "total_steps",
        "steps_done",
        "global_step_start",
        "started_ms",
        "ended_ms",
        "output_dir",
        "final_metrics",
        "reused_run_id",
        "reused_stage_idx",
    )
    return {n: getattr(update, n) for n in names if getattr(update, n) is not None}


def percentile(values: list[int], q: float) -> float | None:
    """The q-th percentile (0..100) of values, nearest rank; None if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(int(round(q / 100 * len(ordered) + 0.5)) - 1, 0)
    return float(ordered[min(rank, len(ordered) - 1)])
