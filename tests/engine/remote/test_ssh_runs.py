"""`stagelab run PLAN --target NAME` on a real OpenSSH server on 127.0.0.1: the target
records the same run id in its own workspace and trains it with the ordinary engine, value
for value as a local run of the same plan; the desktop's mirror records it here."""

from __future__ import annotations

import shutil
import time

import pytest

from engine.cli.main import main
from engine.store import Store, queries
from tests.engine.remote.conftest import add_target

PLAN = """\
version: 1
name: remote-demo
stages:
  - name: mlm
    kind: pretrain
    objective: masked_lm
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: data/corpus.txt, format: text, max_length: 24, eval_ratio: 0.1}
    max_steps: 8
    batch_size: 32
    eval: {every_steps: 4, metrics: [loss, accuracy]}
  - name: cls
    kind: train
    task: sequence_classification
    model: {from_stage: mlm}
    data: {path: data/sentiment.csv, max_length: 24, eval_ratio: 0.2}
    max_steps: 12
    batch_size: 32
    eval: {every_steps: 6, metrics: [loss, accuracy]}
"""


def series_of(store: Store, run_id: str) -> dict[tuple[int, str], tuple[list, list]]:
    """Every series but the speed figures (perf/: wall time, which differs run to run)."""
    keys = {
        (m.stage_idx, m.key)
        for m in queries.latest_metrics(store, run_id)
        if not m.key.startswith("perf/")
    }
    return {
        (idx, key): tuple(map(list, queries.read_series(store, run_id, key, stage_idx=idx)))
        for idx, key in sorted(keys)
    }


def wait_for(what, seconds: float, step: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(step)
    raise AssertionError(f"not within {seconds} s: {what.__doc__}")


@pytest.mark.slow
def test_a_plan_runs_on_an_ssh_target_value_for_value_as_here(
    sshd, bare_python, data_dir, tmp_path, capsys
):
    ws, workdir = tmp_path / "ws", tmp_path / "remote"
    plan_dir = tmp_path / "plan"
    (plan_dir / "data").mkdir(parents=True)
    for name in ("corpus.txt", "sentiment.csv"):
        shutil.copy(data_dir / name, plan_dir / "data" / name)
    (plan_dir / "plan.yaml").write_text(PLAN)
    add_target(ws, "box", sshd.url, *sshd.target_args(workdir, bare_python))
    assert main(["--workspace", str(ws), "target", "check", "box"]) == 0
    capsys.readouterr()

    clock = time.monotonic()
    code = main(
        ["--workspace", str(ws), "run", str(plan_dir / "plan.yaml"), "--target", "box", "--detach"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    run_id = out.out.strip().splitlines()[-1]
    store = Store.open(ws / "stagelab.db")
    run = queries.get_run(store, run_id)
    assert run.target == "box" and run.plan_text == PLAN and run.plan_dir == str(plan_dir)
    placement = run.placement
    assert placement["kind"] == "ssh" and placement["remote_run_id"] == run_id
    assert placement["remote_workspace"] == f"{workdir}/workspace"
    # The target's copies: content-addressed blobs, the recorded plan keeps the local paths.
    assert sorted(placement["files"]) == [
        str(plan_dir / "data" / n) for n in ("corpus.txt", "sentiment.csv")
    ]
    assert all(p.startswith(f"{workdir}/blobs/") for p in placement["files"].values())

    remote = Store.open(workdir / "workspace" / "stagelab.db")

    def first_step():
        """the target's first training step"""
        return any(m.key == "train/loss" for m in queries.latest_metrics(remote, run_id))

    wait_for(first_step, 240)
    print(f"\nrun --target to the first remote step: {time.monotonic() - clock:.2f} s")

    # The same plan here (no stage reused from the mirrored run) while the target trains.
    assert main(["--workspace", str(ws), "run", str(plan_dir / "plan.yaml"), "--no-cache"]) == 0
    (here,) = [r for r in queries.list_runs(store) if r.id != run_id]

    def remote_ended():
        """the target's run ended"""
        return queries.get_run(remote, run_id).status in ("finished", "failed")

    wait_for(remote_ended, 240, 0.5)
    there = queries.get_run(remote, run_id)
    assert there.status == "finished", there.error
    assert there.plan_text != PLAN and str(workdir / "blobs") in there.plan_text
    # The server the target keeps (engine/launch/kept_server.py): started for the first run
    # there, which waited for it; every run is its fork.
    log = (workdir / "workspace" / "runs" / run_id / "engine.log").read_text()
    first = log.split("\n")[0]
    assert first.startswith("engine server: ") and "on its own" not in first, log[:300]
    assert there.environment["engine_start"] == "forked by the engine server"
    expected = series_of(store, here.id)
    assert expected and series_of(remote, run_id) == expected
    # Sent once: a second run of the same plan sends nothing.
    from engine.remote.shell import shell_for
    from engine.remote.sync import sync_plan
    from engine.remote.targets import get_target

    synced = sync_plan(
        shell_for(get_target(store, "box")), bare_python, str(workdir), PLAN, plan_dir
    )
    assert synced.sent_bytes == 0 and synced.copies == placement["files"]

    # The mirror recorded the target's run here, every point once.
    def mirrored():
        """the local record of the target's run ended"""
        return queries.get_run(store, run_id).stored_status in ("finished", "failed")

    wait_for(mirrored, 120, 0.5)
    assert series_of(store, run_id) == expected
