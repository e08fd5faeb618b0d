"""The run commands on a run that trains on an SSH target (a real OpenSSH server on
127.0.0.1), each through the local mirror's channel.json or the local record: `pause`,
`resume` of the paused run, `stop` at a checkpoint, `resume` continuing it there (timed
to its first resumed step), `resume` of a run whose engine and mirror were killed (the
record here still says paused), `watch` to the end, `show`, `show --json`, `export`. Its
series equal an uninterrupted local run of the same plan value for value, every step once.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sys
import time

import pytest

from engine.cli.main import main
from engine.launch.kept_server import server_answers
from engine.launch.runs import start_run
from engine.remote.mirror_store import counts
from engine.store import Store, Workspace, queries
from engine.store.metrics import export_metrics_rows
from tests.engine.process.live_kill import pause_after_checkpoint, trained_past
from tests.engine.remote.conftest import add_target
from tests.engine.remote.mirror_checks import processes_with
from tests.engine.remote.test_ssh_runs import series_of, wait_for

pytestmark = pytest.mark.slow

PLAN = """\
version: 1
name: commands
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 6
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 240
    eval: {every_steps: 12, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 6}
"""


def points(store: Store, run_id: str, stage: int = 1) -> list[int]:
    return queries.read_series(store, run_id, "train/loss", stage_idx=stage)[0]


def test_pause_stop_resume_watch_show_export_on_a_run_on_a_target(sshd, data_dir, tmp_path, capsys):
    ws, workdir, plan_dir = tmp_path / "ws", tmp_path / "remote", tmp_path / "plan"
    plan_dir.mkdir()
    for name in ("corpus.txt", "sentiment.csv"):
        shutil.copy(data_dir / name, plan_dir / name)
    (plan_dir / "plan.yaml").write_text(PLAN)
    add_target(ws, "box", sshd.url, *sshd.target_args(workdir, sys.executable))

    def stagelab(*args: str) -> int:
        capsys.readouterr()
        return main(["--workspace", str(ws), *args])

    assert stagelab("run", str(plan_dir / "plan.yaml"), "--target", "box", "--detach") == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    here = Store.open(ws / "stagelab.db")
    there = Store.open(workdir / "workspace" / "stagelab.db")
    # The same plan here, uninterrupted (nothing reused), while the target trains.
    local = start_run(
        Workspace.open(ws), here, plan_text=PLAN, plan_dir=str(plan_dir), use_cache=False
    )

    def status() -> str:
        return queries.get_run(here, run_id).status

    # Held there at stage 1's first checkpoint over the engine's own channel (the target is
    # this machine), so that pause, resume and stop through the mirror each find the run
    # mid-stage however fast the machine trains (stage 1 takes ~2 s on an idle 2-core one).
    there_ws = workdir / "workspace"
    pause_after_checkpoint(there_ws, run_id, stage=1)
    wait_for(lambda: status() == "paused", 60)
    held = points(there, run_id)[-1]
    assert stagelab("resume", run_id) == 0, capsys.readouterr().err  # live, same engine
    trained_past(there_ws, run_id, stage=1, step=held)
    assert stagelab("pause", run_id) == 0, capsys.readouterr().err  # while it trains
    wait_for(lambda: queries.get_run(there, run_id).status == "paused", 30)
    assert stagelab("stop", run_id) == 0, capsys.readouterr().err
    wait_for(lambda: status() == "stopped", 60)
    stopped = len(points(there, run_id))
    assert stopped < 240, "the run ended before the stop"
    assert queries.get_run(there, run_id).status == "stopped"

    # The server the target keeps for the runs after its first (engine/launch/kept_server.py)
    # answers by now, or soon: this resume is its fork.
    wait_for(lambda: any(map(server_answers, sshd.servers.glob("*.sock"))), 120)
    clock, wall = time.monotonic(), time.time()
    assert stagelab("resume", run_id, "--detach") == 0, capsys.readouterr().err
    owned = time.monotonic() - clock  # the engine there owns the run when resume returns
    assert status() == "queued"
    # Held again at its next checkpoint as soon as it answers; the time to its first resumed
    # step is read from that point's own wall time.
    pid = pause_after_checkpoint(there_ws, run_id, stage=1, beyond=stopped)
    wait_for(lambda: len(points(there, run_id)) > stopped, 60)
    resumed = [
        w for name, step, key, _, w in export_metrics_rows(there, run_id)
        if name == "cls" and key == "train/loss" and step > stopped
    ]  # fmt: skip
    took = min(resumed) / 1000 - wall
    log = (workdir / "workspace" / "runs" / run_id / "engine.log").read_text()
    assert "engine server: kept on this machine" in log
    assert (
        queries.get_run(there, run_id).environment["engine_start"] == "forked by the engine server"
    )
    with capsys.disabled():
        print(
            f"\nresume to the first resumed step on the target: {took:.2f} s ({owned:.2f} s to return)"
        )
    # The desktop goes away (its mirror killed), then the engine there is killed: this
    # machine still says `paused`; resume's contact finds it interrupted and continues it.
    wait_for(lambda: status() == "paused", 30)
    for mirror in processes_with(f"mirror\0--workspace\0{ws}\0--run\0{run_id}"):
        os.kill(mirror, signal.SIGKILL)
    wait_for(lambda: not processes_with(f"--workspace\0{ws}\0--run\0{run_id}"), 30)
    os.kill(pid, signal.SIGKILL)
    assert status() == "paused" and len(points(there, run_id)) < 240
    assert stagelab("resume", run_id, "--detach") == 0, capsys.readouterr().err
    assert stagelab("watch", run_id) == 0
    assert status() == "finished"
    assert queries.get_run(there, run_id).resume_count == 2

    assert local.proc.wait(300) == 0
    expected = series_of(here, local.run_id)
    assert series_of(here, run_id) == expected == series_of(there, run_id)
    assert points(here, run_id) == list(range(1, 241))

    assert stagelab("show", run_id) == 0
    assert f"run {run_id} of 'commands': finished" in capsys.readouterr().out
    assert stagelab("show", run_id, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "finished" and [s["status"] for s in shown["stages"]] == [
        "finished",
        "finished",
    ]
    out_csv, out_plan = tmp_path / "points.csv", tmp_path / "plan-out.yaml"
    assert stagelab("export", run_id, "--metrics", str(out_csv), "--plan", str(out_plan)) == 0
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == counts(there, run_id)[0]
    cls_loss = [int(r["step"]) for r in rows if r["key"] == "train/loss" and r["stage"] == "cls"]
    assert cls_loss == list(range(1, 241))
    assert str(plan_dir / "corpus.txt") in out_plan.read_text()  # the local paths
