"""Runs as jobs of a real one-node Slurm cluster on 127.0.0.1 (slurm_fixtures.py): the batch
script's srun + `python -m engine ranks` (2 processes forked after one import, on gloo)
trains a demo-sized plan equal value for value to a local run of it; a job signalled before
its time limit and one requeued with `scontrol requeue` resume from their checkpoints with
every step once. (torchrun's c10d rendezvous, which jobs of several nodes use, is run by
tests/engine/process/test_distributed.py.)"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from engine.launch.runs import record_run
from engine.remote import slurm
from engine.remote.mirror_process import mirror_running
from engine.remote.shell import LocalShell
from engine.store import Store, Workspace, queries
from tests.engine.process.live_kill import pause_after_checkpoint
from tests.engine.process.test_distributed import PLAN, points
from tests.engine.process.test_runs import show, stagelab, wait_for
from tests.engine.remote.slurm_fixtures import slurm_cluster  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plan_file(data_dir: Path) -> Path:
    path = data_dir / "slurm-ddp.yaml"
    path.write_text(PLAN)
    return path


@pytest.fixture(scope="module")
def reference(plan_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The plan's points from a local run of 2 processes (same seed, CPU)."""
    ws = tmp_path_factory.mktemp("local") / "ws"
    run_id = stagelab(ws, "run", str(plan_file), "--nproc", "2", "--no-cache", "--detach")
    run_id = run_id.stdout.strip()
    wait_for(lambda: show(ws, run_id)["status"] == "finished", 300, "the local run")
    return points(ws, run_id, ws.parent / "local.csv")


@pytest.fixture
def cluster(slurm_cluster, monkeypatch):  # noqa: F811
    """The cluster, its SLURM_CONF in this process's environment (sbatch passes it on)."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    return slurm_cluster


def recorded(tmp_path: Path, plan_file: Path) -> tuple[Workspace, Store, str]:
    """The job's workspace with the run recorded, as the target's side records it."""
    ws = Workspace.open(tmp_path / "job-ws")
    store = Store.open(ws.db_path)
    run_id = record_run(
        ws,
        store,
        name="ddp",
        plan_text=plan_file.read_text(),
        plan_dir=str(plan_file.parent),
        gpus="cpu",
        nproc=2,
        use_cache=False,
    )
    return ws, store, run_id


def submit(ws: Workspace, store: Store, run_id: str) -> slurm.Submission:
    return slurm.submit_run(
        LocalShell(),
        {"partition": "debug", "time": "30"},
        python=sys.executable,
        workspace=str(ws.root),
        run_id=run_id,
        nproc=2,
        store=store,
    )


def until_ended(cluster, job_id: str, timeout: float = 300) -> slurm.Job:
    state = slurm.wait_while(LocalShell(), job_id, lambda j: j is not None and j.active, timeout)
    assert state is not None and not state.active, f"job {job_id}: {state}\n{cluster.logs()}"
    return state


def until_waiting(cluster, job_id: str, timeout: float = 90, hold: bool = False) -> slurm.Job:
    state = slurm.wait_while(LocalShell(), job_id, lambda j: j is None or not j.waiting, timeout)
    assert state is not None and state.waiting, f"job {job_id} not requeued: {state}"
    if not hold:
        start_now(cluster, job_id)
    return state


def start_now(cluster, job_id: str) -> None:
    """Slurm holds a requeued job for about two minutes; the test lets it start once the
    node has cleaned up the last start (a start within the second of its end is refused)."""
    wait_for(lambda: cluster.run("sinfo", "-h", "-o", "%t").stdout.strip() == "idle", 60, "idle")
    time.sleep(1.5)
    cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")


def assert_every_step_once(ours: dict) -> None:
    for stage, key in {(k[0], k[2]) for k in ours if k[2] == "train/loss"}:
        steps = sorted(k[1] for k in ours if (k[0], k[2]) == (stage, key))
        assert steps == list(range(1, len(steps) + 1)), (stage, steps)


def test_run_on_a_slurm_target_shows_its_script_then_trains_as_a_local_run_does(
    cluster, plan_file, reference, tmp_path
):
    ws = tmp_path / "desk"
    workdir = tmp_path / "cluster-home"
    stagelab(ws, "target", "add", "cl", "slurm://", "--workdir", str(workdir), "--python",
             sys.executable, "--partition", "debug", "--time", "30")  # fmt: skip
    dry = stagelab(ws, "run", str(plan_file), "--target", "cl", "--nproc", "2", "--dry-run")
    assert dry.stdout.startswith("#!/bin/bash\n#SBATCH --job-name=stagelab-RUN_ID\n")
    assert (
        "#SBATCH --partition=debug" in dry.stdout and "-m engine ranks --nproc 2 run" in dry.stdout
    )
    # Nothing sent, nothing recorded.
    assert not (workdir / "workspace").exists() and not any((ws / "runs").glob("*"))
    submitted_ms = time.time() * 1000
    run = stagelab(ws, "run", str(plan_file), "--target", "cl", "--nproc", "2", "--detach")
    run_id = run.stdout.strip().splitlines()[-1]
    wait_for(lambda: show(ws, run_id)["status"] in ("finished", "failed"), 300, "the job")
    there = workdir / "workspace"
    out = "\n".join(p.read_text() for p in (there / "runs" / run_id).glob("slurm-*.out"))
    data = show(ws, run_id)
    assert data["status"] == "finished", out
    store = Store.open(ws / "stagelab.db")
    placement = queries.get_run(store, run_id).placement
    assert placement["kind"] == "slurm" and placement["processes"] == 2
    job_id = placement["slurm"]["job_id"]
    assert "#SBATCH --partition=debug" in placement["slurm"]["script"]
    ended = until_ended(cluster, job_id)
    assert ended.state == "COMPLETED"
    far = queries.get_run(Store.open(there / "stagelab.db"), run_id)
    assert far.environment["distributed"]["world_size"] == 2
    # The local record, mirrored, equals a local run of the plan value for value.
    assert points(ws, run_id, tmp_path / "job.csv") == reference
    # The figure of the README: submission to the first step on the loopback cluster.
    first = min(
        wall
        for _, step, key, _, wall in queries.export_metrics_rows(store, run_id)
        if key == "train/loss" and step == 1
    )
    print(f"submission to the first step: {(first - submitted_ms) / 1000:.1f} s")


def test_a_job_signalled_before_its_limit_or_requeued_resumes_with_every_step_once(
    cluster, plan_file, reference, tmp_path
):
    ws, store, run_id = recorded(tmp_path, plan_file)
    sub = submit(ws, store, run_id)
    # What Slurm sends the script near the time limit (--signal=B:USR1@…): the engine
    # checkpoints and stops, the record says the run waits, the script requeues the job.
    pause_after_checkpoint(ws.root, run_id, 0)
    cluster.run("scancel", "--batch", "--signal=USR1", sub.job_id)
    until_waiting(cluster, sub.job_id, hold=True)
    assert queries.get_run(store, run_id).status == "queued"
    assert queries.list_events(store, run_id, kind="requeue")
    start_now(cluster, sub.job_id)
    stop = queries.latest_checkpoint(store, run_id)
    assert stop is not None and stop.stage_idx == 0
    # An operator's requeue, in the second stage this time.
    pause_after_checkpoint(ws.root, run_id, 1)
    cluster.run("scontrol", "requeue", sub.job_id)
    until_waiting(cluster, sub.job_id)
    ended = until_ended(cluster, sub.job_id)
    out = (ws.run_dir(run_id) / f"slurm-{sub.job_id}.out").read_text()
    assert ended.state == "COMPLETED" and ended.restarts == 2, out
    assert "the job requeued" in out
    assert show(ws.root, run_id)["status"] == "finished"
    assert queries.get_run(store, run_id).resume_count == 2  # SLURM_RESTART_COUNT > 0
    resumed = queries.list_events(store, run_id, kind="resume")
    assert len(resumed) == 2 and all("step 0" not in e.message for e in resumed)
    ours = points(ws.root, run_id, tmp_path / "requeued.csv")
    assert_every_step_once(ours)
    assert ours == reference  # same world size: the resume is exact


def test_over_ssh_a_waiting_run_shows_slurms_reason_and_stop_cancels_its_job(
    cluster, sshd, plan_file, tmp_path
):
    # slurm+ssh://: sbatch, scontrol and scancel run on the login node through OpenSSH.
    ws = tmp_path / "desk"
    options = sshd.target_args(tmp_path / "home", sys.executable)
    options += ["--ssh-option", f"SetEnv=SLURM_CONF={cluster.conf}", "--sbatch=--begin=now+1hour"]
    url = sshd.url.replace("ssh://", "slurm+ssh://")
    stagelab(ws, "target", "add", "later", url, *options)
    run = stagelab(ws, "run", str(plan_file), "--target", "later", "--detach")
    run_id = run.stdout.strip().splitlines()[-1]
    store = Store.open(ws / "stagelab.db")

    def slurm_said() -> dict:
        return queries.get_run(store, run_id).placement.get("slurm") or {}

    # The mirror keeps Slurm's word on the waiting job in the local record.
    wait_for(lambda: slurm_said().get("reason") == "BeginTime", 60, "Slurm's reason here")
    assert show(ws, run_id)["status"] == "queued"
    # Resume of a waiting run is refused at once (it starts by itself).
    early = stagelab(ws, "resume", run_id, check=False, timeout=60)
    assert early.returncode == 2 and "has not started yet" in early.stderr
    assert "BeginTime" in early.stderr
    stopped = stagelab(ws, "stop", run_id)
    assert f"Slurm job {slurm_said()['job_id']} cancelled" in stopped.stdout
    assert show(ws, run_id)["status"] == "stopped"
    first_job = slurm_said()["job_id"]
    assert slurm.job(LocalShell(), first_job).state == "CANCELLED"
    # Resumed: a new job of the same script, with --resume.
    stagelab(ws, "resume", run_id, "--detach")
    assert slurm_said()["job_id"] != first_job
    assert "export STAGELAB_RESUME=--resume" in slurm_said()["script"]
    stagelab(ws, "stop", run_id)
    # Its mirror learns from Slurm that the job was cancelled, stores the end and goes.
    wait_for(lambda: not mirror_running(ws / "runs" / run_id), 60, "the mirror to end")
    assert show(ws, run_id)["status"] == "stopped"
