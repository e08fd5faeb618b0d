"""Runs of several processes (CPU, gloo), under torchrun and as the engine server's group
of forks (engine/process/group.py): the same numbers as one process with the same global
batch, every point recorded once, a killed process ends the run `interrupted` and resume
finishes it, two local "machines" through the c10d rendezvous. Real CLI, real engine
subprocesses, a tiny model (docs/distributed.md)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.launch.served import OFF, SERVER_ENV
from tests.engine.process.live_kill import pause_after_checkpoint
from tests.engine.process.test_runs import export, in_process, show, stagelab, wait_for

pytestmark = pytest.mark.slow

# Dropout 0: each process draws its own dropout noise, so only a run without dropout can
# equal one process number for number. Batches are global (split over the processes).
PLAN = """
name: ddp
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 8
    log_every_steps: 2
    regularization: {dropout: 0.0}
    eval: {every_steps: 4, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 4}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    grad_accum: 2
    max_steps: 12
    log_every_steps: 3
    regularization: {dropout: 0.0}
    freezing: {embeddings: true, layers: 1, unfreeze: {every_steps: 6}}
    eval: {every_steps: 6, metrics: [loss, accuracy, f1]}
    checkpoint: {every_steps: 3}
"""

# float32 sums in another order (two halves of a batch, then DDP's all-reduce).
REL_TOL = 1e-4


@pytest.fixture
def plan_file(data_dir: Path, tmp_path: Path) -> Path:
    path = data_dir / f"ddp-{tmp_path.name}.yaml"
    path.write_text(PLAN)
    return path


@pytest.fixture(scope="module")
def one_process(data_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    """PLAN on one process (workspace, run id): what the runs on two processes or two
    machines must equal (trained once for the module)."""
    plan = data_dir / "ddp-one.yaml"
    plan.write_text(PLAN)
    ws = tmp_path_factory.mktemp("one") / "ws"
    stagelab(ws, "run", str(plan), "--name", "one", "--no-cache")
    return ws, run_id_of(ws, "one")


def run_id_of(ws: Path, name: str) -> str:
    for exp in json.loads(in_process(ws, "ls", "--json"))["experiments"]:
        if exp["name"] == name:
            return exp["runs"][0]["id"]
    raise AssertionError(f"no experiment {name}")


def points(ws: Path, run_id: str, out: Path) -> dict[tuple, float]:
    rows = export(ws, run_id, out)
    keys = [(stage, step, key) for stage, step, key, _ in rows]
    assert len(keys) == len(set(keys)), "a point was recorded twice"
    return {(stage, step, key): float(value) for stage, step, key, value in rows}


def assert_close(ours: dict, theirs: dict, rel: float, abs_: float = 1e-6) -> None:
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=rel, abs=abs_), key


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, plan_file, one_process):
    ws = tmp_path / "ws"
    one_ws, one_id = one_process
    # The second stage's batches come from a loader worker in each process (its own rows
    # of the global batch, pinned and counted as the whole): the same numbers.
    workers = plan_file.with_name(f"workers-{plan_file.name}")
    workers.write_text(
        plan_file.read_text().replace(
            "grad_accum: 2\n", "grad_accum: 2\n    batching: {workers: 1}\n"
        )
    )
    # Under torchrun, whether or not the session has an engine server (the other runs of
    # several processes here are its forks when it has).
    two = stagelab(
        ws,
        "run",
        str(workers),
        "--name",
        "two",
        "--nproc",
        "2",
        "--no-cache",
        env={SERVER_ENV: OFF},
    )
    assert "finished" in two.stdout
    two_id = run_id_of(ws, "two")
    data = show(ws, two_id)
    assert data["status"] == "finished"
    assert [s["status"] for s in data["stages"]] == ["finished", "finished"]
    ours = points(ws, two_id, tmp_path / "two.csv")
    theirs = points(one_ws, one_id, tmp_path / "one.csv")
    assert any(k[2] == "train/loss" for k in ours) and any(k[2] == "eval/f1" for k in ours)
    assert_close(ours, theirs, REL_TOL)
    from engine.store import Store, queries

    run = queries.get_run(Store.open(ws / "stagelab.db"), two_id)
    assert run.nproc == 2
    assert run.environment["distributed"]["world_size"] == 2
    assert run.environment["engine_start"] == "a process of its own"
    # Only the owner writes: one checkpoint row per checkpoint, the other rank's pid file.
    assert (Path(run.run_dir) / "rank1.pid").exists()


def test_a_batch_that_does_not_split_is_refused_before_anything_starts(tmp_path, plan_file):
    ws = tmp_path / "ws"
    proc = stagelab(ws, "run", str(plan_file), "--nproc", "3", check=False)
    assert proc.returncode == 2
    assert "batch_size 16 cannot be split over 3 processes" in proc.stderr
    assert "use a multiple of 3" in proc.stderr
    assert not (ws / "runs").exists() or not any((ws / "runs").iterdir())


def test_sigkill_of_one_process_interrupts_the_run_and_resume_finishes_it(tmp_path, plan_file):
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "reference", "--nproc", "2", "--no-cache")
    ref_id = run_id_of(ws, "reference")
    run_id = stagelab(
        ws, "run", str(plan_file), "--name", "killed", "--nproc", "2", "--detach", "--no-cache"
    ).stdout.strip()
    # The owner pauses (the other process waits in the control broadcast, no timeout) …
    pause_after_checkpoint(ws, run_id, 1)
    run_dir = Path(show(ws, run_id)["run_dir"])
    other = int((run_dir / "rank1.pid").read_text())
    os.kill(other, signal.SIGKILL)  # … and the non-owner process is killed.
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 60, "status interrupted")
    from engine.store import Store, queries

    store = Store.open(ws / "stagelab.db")
    run = queries.get_run(store, run_id)
    assert run.stored_status == "interrupted"
    if os.environ.get(SERVER_ENV, OFF) != OFF:  # the ranks were the server's forks
        assert run.environment["engine_start"] == "forked by the engine server"
    resumed = stagelab(ws, "resume", run_id)
    assert "finished" in resumed.stdout
    assert show(ws, run_id)["status"] == "finished"
    resumed_at = queries.list_events(store, run_id, kind="resume")
    assert resumed_at and "step 0" not in resumed_at[-1].message  # continued mid-stage
    ours = points(ws, run_id, tmp_path / "resumed.csv")
    theirs = points(ws, ref_id, tmp_path / "reference.csv")
    # Same world size: exact resume (every rank's RNG state is in the checkpoint).
    assert ours == theirs
    for stage, key in {(k[0], k[2]) for k in ours if k[2].startswith("train/")}:
        steps = sorted(k[1] for k in ours if (k[0], k[2]) == (stage, key))
        assert steps == list(range(steps[0], steps[0] + len(steps)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_local_machines_through_the_c10d_rendezvous(tmp_path, plan_file, one_process):
    node0, node1 = tmp_path / "node0", tmp_path / "node1"
    rdzv = f"127.0.0.1:{free_port()}"
    common = ["--nnodes", "2", "--rdzv", rdzv, "--no-cache"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--workspace", str(node1), "run", str(plan_file)]
        + common
        + ["--node-rank", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        owner = stagelab(
            node0, "run", str(plan_file), "--name", "nodes", "--node-rank", "0", *common
        )
        out, _ = worker.communicate(timeout=300)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, out
    assert "finished" in owner.stdout
    run_id = run_id_of(node0, "nodes")
    assert show(node0, run_id)["status"] == "finished"
    from engine.store import Store, queries

    run = queries.get_run(Store.open(node0 / "stagelab.db"), run_id)
    assert run.environment["distributed"]["world_size"] == 2
    # Only node 0's workspace records the run.
    assert not (node1 / "stagelab.db").exists()
    assert_close(
        points(node0, run_id, tmp_path / "nodes.csv"),
        points(*one_process, tmp_path / "single.csv"),
        REL_TOL,
    )


def test_stop_reaches_every_process_and_resume_on_one_process_finishes(tmp_path, plan_file):
    ws = tmp_path / "ws"
    run_id = stagelab(
        ws, "run", str(plan_file), "--name", "stopped", "--nproc", "2", "--detach", "--no-cache"
    ).stdout.strip()
    pause_after_checkpoint(ws, run_id, 1)  # paused: the other process waits in a broadcast
    other = int((Path(show(ws, run_id)["run_dir"]) / "rank1.pid").read_text())
    stagelab(ws, "stop", run_id)  # a paused run stops at once, with a checkpoint
    wait_for(lambda: show(ws, run_id)["status"] == "stopped", 60, "status stopped")

    def gone() -> bool:
        try:
            os.kill(other, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, 60, "the other process to exit")
    # Another number of processes: it works, not bit-exact (docs/distributed.md).
    refused = stagelab(ws, "resume", run_id, "--nproc", "3", check=False)
    assert refused.returncode == 2 and "cannot be split over 3 processes" in refused.stderr
    resumed = stagelab(ws, "resume", run_id, "--nproc", "1")
    assert "finished" in resumed.stdout
    from engine.store import Store, queries

    assert queries.get_run(Store.open(ws / "stagelab.db"), run_id).nproc == 1
    ours = points(ws, run_id, tmp_path / "resumed.csv")
    steps = sorted(k[1] for k in ours if k[:1] == ("cls",) and k[2] == "train/loss")
    assert steps == list(range(1, 13))


def test_the_launcher_command_lines():
    from engine.launch.runs import Nodes, engine_command, launch_env, worker_command
    from engine.store.workspace import Workspace

    ws = Workspace(Path("/w"))
    assert engine_command(ws, "abc", resume=False) == [
        sys.executable, "-m", "engine", "run", "--workspace", "/w", "--run", "abc"
    ]  # fmt: skip
    cmd = engine_command(ws, "abc", resume=True, nproc=2)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2" and "--standalone" in cmd
    assert cmd[-8:] == ["-m", "engine", "run", "--workspace", "/w", "--run-id", "abc", "--resume"]
    gpus = engine_command(ws, "abc", resume=False, gpus="0,1")
    assert gpus[gpus.index("--nproc-per-node") + 1] == "2"
    assert launch_env("0,1") == {"STAGELAB_DIST_BACKEND": "nccl", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert launch_env("cpu") == {"STAGELAB_DIST_BACKEND": "gloo"}
    nodes = Nodes(2, 1, "10.0.0.1:29400")
    worker = worker_command("cpu", 1, nodes)
    assert worker[-1] == "--worker" and "--workspace" not in worker
    assert worker[worker.index("--rdzv-endpoint") + 1] == "10.0.0.1:29400"
    assert worker[worker.index("--rdzv-backend") + 1] == "c10d"


def test_machines_need_a_rendezvous(tmp_path, plan_file):
    proc = stagelab(tmp_path / "ws", "run", str(plan_file), "--nnodes", "2", check=False)
    assert proc.returncode == 2 and "--rdzv HOST:PORT" in proc.stderr


def joint_plan(scored: Path) -> str:
    data = f"path: {scored}, max_length: 24, eval_ratio: 0.2, split_seed: 5"
    return f"""
name: joint-ddp
stages:
  - name: multitask
    kind: joint
    model: {{builtin: bert-tiny, vocab_size: 200}}
    members:
      - {{name: mood, data: {{{data}}}}}
      - {{name: strength, task: sequence_regression, weight: 0.5, data: {{{data}, label_column: score}}}}
    sampling: proportional
    batch_size: 8
    max_steps: 10
    log_every_steps: 2
    regularization: {{dropout: 0.0}}
    freezing: {{layers: 1, unfreeze: {{every_steps: 5, layers: 1}}}}
    eval: {{every_steps: 5, metrics: [loss, accuracy, mae]}}
  - name: mutual
    kind: joint
    coupling: mutual
    members:
      - {{name: first, model: {{from_stage: multitask, member: mood}}, data: {{{data}}}}}
      - {{name: second, model: {{builtin: bert-tiny}}, lr_multiplier: 2.0, data: {{{data}}}}}
    batch_size: 8
    max_steps: 8
    log_every_steps: 2
    regularization: {{dropout: 0.0}}
    eval: {{every_steps: 4, metrics: [loss, accuracy]}}
"""


def test_joint_stages_on_two_processes_equal_one(tmp_path, scored_csv):
    plan_file = tmp_path / "joint.yaml"
    plan_file.write_text(joint_plan(scored_csv))
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "one", "--no-cache")
    stagelab(ws, "run", str(plan_file), "--name", "two", "--nproc", "2", "--no-cache")
    ours = points(ws, run_id_of(ws, "two"), tmp_path / "two.csv")
    theirs = points(ws, run_id_of(ws, "one"), tmp_path / "one.csv")
    assert any(k[2] == "train/loss/strength" for k in ours)
    assert_close(ours, theirs, REL_TOL)


GROW_DISTILL = """
name: grow-distill-ddp
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 4
    regularization: {dropout: 0.0}
  - name: deeper
    kind: grow
    model: {from_stage: mlm}
    target_layers: 4
    identity_init: true
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 6
    log_every_steps: 2
    regularization: {dropout: 0.0}
    eval: {every_steps: 3, metrics: [loss, accuracy]}
  - name: teacher
    kind: train
    model: {from_stage: deeper}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 4
    regularization: {dropout: 0.0}
  - name: student
    kind: distill
    teacher: {from_stage: teacher}
    model: {builtin: bert-tiny}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    alpha: 0.5
    temperature: 2.0
    hidden_weight: 0.1
    batch_size: 8
    max_steps: 6
    log_every_steps: 2
    regularization: {dropout: 0.0}
    augmentation: {swap_prob: 0.1}
    eval: {every_steps: 3, metrics: [loss, accuracy]}
"""


def test_grow_and_distill_on_two_processes_equal_one(tmp_path, data_dir):
    plan_file = data_dir / f"grow-distill-ddp-{tmp_path.name}.yaml"
    plan_file.write_text(GROW_DISTILL)
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "one", "--no-cache")
    stagelab(ws, "run", str(plan_file), "--name", "two", "--nproc", "2", "--no-cache")
    ours = points(ws, run_id_of(ws, "two"), tmp_path / "two.csv")
    theirs = points(ws, run_id_of(ws, "one"), tmp_path / "one.csv")
    assert any(k[0] == "student" and k[2] == "train/loss" for k in ours)
    assert_close(ours, theirs, REL_TOL)


# LoRA stages (masked LM, a classification head that trains beside the adapters with
# gradual unfreezing among them, a causal LM merged into its output) and the preference
# losses: DPO against a frozen copy of the model, DPO with adapters (the reference is the
# policy with its adapters off) and reference-free SimPO from those adapters merged (the
# owner merges them in setup, the other process loads them).
