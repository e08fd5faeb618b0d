"""Faults of a run on an SSH target (a real OpenSSH server on 127.0.0.1), seen through the
local mirror: the SSH forward killed mid-run, the mirror killed and `stagelab watch`
re-attaching; the remote engine killed (the run is `interrupted` here within seconds)
and `stagelab resume` continuing it there. Each time the local record must equal the
target's, every point once."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from engine.channel.client import ChannelClient
from engine.cli.main import main
from engine.remote import mirror_store
from engine.store import Store, queries
from tests.engine.process.live_kill import pause_after_checkpoint
from tests.engine.remote.conftest import add_target
from tests.engine.remote.mirror_checks import (
    assert_same_record,
    processes_with,
    wait_for,
)
from tests.engine.remote.test_mirror import PLAN

pytestmark = pytest.mark.slow


class OnTarget:
    """A run started with `stagelab run --target box` on the test's sshd."""

    def __init__(self, sshd, data_dir: Path, root: Path, capsys):
        self.ws, self.workdir = root / "ws", root / "remote"
        plan_dir = root / "plan"
        plan_dir.mkdir()
        for name in ("corpus.txt", "sentiment.csv"):
            shutil.copy(data_dir / name, plan_dir / name)
        (plan_dir / "plan.yaml").write_text(PLAN)
        # The target's Python is this one: it has this Stagelab, nothing is installed.
        add_target(self.ws, "box", sshd.url, *sshd.target_args(self.workdir, sys.executable))
        capsys.readouterr()
        args = ["--workspace", str(self.ws), "run", str(plan_dir / "plan.yaml")]
        assert main([*args, "--target", "box", "--detach"]) == 0
        self.id = capsys.readouterr().out.strip().splitlines()[-1]
        self.here = Store.open(self.ws / "stagelab.db")
        self.there_ws = self.workdir / "workspace"
        self.there = Store.open(self.there_ws / "stagelab.db")
        self.run_dir = self.ws / "runs" / self.id

    def control(self, command: str) -> None:
        client = ChannelClient.for_run(self.there_ws / "runs" / self.id, name="test")
        try:
            client.control(command)
        finally:
            client.close()

    def steps(self) -> None:
        """Let the held run train a step or more there, and hold it again once stored."""
        before = mirror_store.counts(self.there, self.id)
        self.control("resume")
        self.control("pause")
        wait_for(lambda: mirror_store.counts(self.there, self.id) > before, 60, "it to go on")

    def mirror_log(self) -> str:
        path = self.run_dir / "mirror.log"
        return path.read_text() if path.exists() else ""

    def lag(self) -> str:
        """The newest mirror's 'mirror lag p99 N ms over M points', from its log."""
        wait_for(lambda: not self.mirrors(), 60, "the mirror to end")
        found = re.findall(r"mirror lag p99 \d+ ms over \d+ points", self.mirror_log())
        return found[-1] if found else "no live points"

    def forwards(self) -> list[int]:
        return processes_with(f"mirror-{self.id[:16]}.sock")

    def mirrors(self) -> list[int]:
        return processes_with(f"mirror\0--workspace\0{self.ws}\0--run\0{self.id}")


def test_a_dropped_forward_and_a_killed_mirror_are_back_filled(sshd, data_dir, tmp_path, capsys):
    run = OnTarget(sshd, data_dir, tmp_path, capsys)
    # Held at a checkpoint of stage 1; it trains on a control at a time.
    pause_after_checkpoint(run.there_ws, run.id, stage=1)
    wait_for(lambda: (run.run_dir / "channel.json").exists(), 60, "the mirror to follow")
    # The SSH connection of the live channel drops; the run goes on there.
    (forward,) = run.forwards()
    os.kill(forward, signal.SIGKILL)
    run.steps()
    wait_for(lambda: run.mirror_log().count("following engine") >= 2, 120, "a new forward")
    assert "the live channel dropped" in run.mirror_log()
    # The desktop goes away (the mirror killed); the run goes on there without it.
    (mirror,) = run.mirrors()
    os.kill(mirror, signal.SIGKILL)
    wait_for(lambda: not run.mirrors(), 10, "the mirror to end")
    run.steps()
    assert mirror_store.counts(run.there, run.id) > mirror_store.counts(run.here, run.id)
    run.control("resume")
    # `stagelab watch` re-attaches: a new mirror back-fills, then follows to the end.
    assert main(["--workspace", str(run.ws), "watch", run.id]) == 0
    assert queries.get_run(run.here, run.id).status == "finished"
    assert_same_record(run.there, run.here, run.id)
    assert not (run.run_dir / "channel.json").exists()
    wait_for(lambda: not run.forwards(), 10, "the forwards to end")


def test_a_killed_remote_engine_is_interrupted_here_and_resumed_there(
    sshd, data_dir, tmp_path, capsys
):
    run = OnTarget(sshd, data_dir, tmp_path, capsys)
    pid = pause_after_checkpoint(run.there_ws, run.id, stage=1)
    wait_for(lambda: mirror_store.local_cursor(run.here, run.id) > 0, what="the mirror")
    wait_for(lambda: queries.get_run(run.here, run.id).status == "paused", 60, "paused here")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: queries.get_run(run.here, run.id).status == "interrupted", 30, "interrupted")
    seconds = time.monotonic() - killed
    print(f"\ninterrupted here {seconds:.1f} s after the remote engine was killed")
    print(f"mirror lag over SSH: {run.lag()}")
    assert seconds < 10
    assert_same_record(run.there, run.here, run.id)
    # `stagelab resume` continues it there from its checkpoint; `watch` follows it.
    assert main(["--workspace", str(run.ws), "resume", run.id, "--detach"]) == 0
    assert main(["--workspace", str(run.ws), "watch", run.id]) == 0
    assert queries.get_run(run.here, run.id).status == "finished"
    assert_same_record(run.there, run.here, run.id)
    print(f"mirror lag over SSH after the resume: {run.lag()}")
    steps = queries.read_series(run.here, run.id, "train/loss", stage_idx=1)[0]
    assert steps == sorted(set(steps)) and steps[-1] == 30
