"""Runs of several processes under torchrun (CPU, gloo): the same numbers as one process
with the same global batch, every point recorded once, a killed process ends the run
`interrupted` and resume finishes it, two local "machines" through the c10d rendezvous.
Real CLI, real engine subprocesses, a tiny model (docs/distributed.md)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.live_kill import pause_after_checkpoint
from tests.engine.test_runs import export, show, stagelab, wait_for

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


def run_id_of(ws: Path, name: str) -> str:
    for exp in json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"]:
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


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, plan_file):
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "one", "--no-cache")
    # The second stage's batches come from a loader worker in each process (its own rows
    # of the global batch, pinned and counted as the whole): the same numbers.
    workers = plan_file.with_name(f"workers-{plan_file.name}")
    workers.write_text(
        plan_file.read_text().replace(
            "grad_accum: 2\n", "grad_accum: 2\n    batching: {workers: 1}\n"
        )
    )
    two = stagelab(ws, "run", str(workers), "--name", "two", "--nproc", "2", "--no-cache")
    assert "finished" in two.stdout
    one_id, two_id = run_id_of(ws, "one"), run_id_of(ws, "two")
    data = show(ws, two_id)
    assert data["status"] == "finished"
    assert [s["status"] for s in data["stages"]] == ["finished", "finished"]
    ours = points(ws, two_id, tmp_path / "two.csv")
    theirs = points(ws, one_id, tmp_path / "one.csv")
    assert any(k[2] == "train/loss" for k in ours) and any(k[2] == "eval/f1" for k in ours)
    assert_close(ours, theirs, REL_TOL)
    from engine.store import Store, queries

    run = queries.get_run(Store.open(ws / "stagelab.db"), two_id)
    assert run.nproc == 2
    assert run.environment["distributed"]["world_size"] == 2
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
    assert queries.get_run(store, run_id).stored_status == "interrupted"
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


def test_two_local_machines_through_the_c10d_rendezvous(tmp_path, plan_file):
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
    stagelab(node0, "run", str(plan_file), "--name", "single", "--no-cache")
    assert_close(
        points(node0, run_id, tmp_path / "nodes.csv"),
        points(node0, run_id_of(node0, "single"), tmp_path / "single.csv"),
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
    from engine.cli.launch import Nodes, engine_command, launch_env, worker_command
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
ADAPTERS_PREFERENCE = """
name: lora-dpo-ddp
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 4
    log_every_steps: 2
    optimizer: {lr: 0.01}
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0}
    eval: {every_steps: 4, metrics: [loss, accuracy]}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    log_every_steps: 2
    optimizer: {lr: 0.01}
    regularization: {dropout: 0.0}
    freezing: {layers: 1, unfreeze: {every_steps: 3}}
    adapter: {rank: 4, alpha: 8, dropout: 0.0, output: adapter}
    eval: {every_steps: 3, metrics: [loss, accuracy]}
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {builtin: gpt2-tiny, vocab_size: 200}
    data: {path: prefs.jsonl, prompt_column: prompt, response_column: chosen, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    log_every_steps: 2
    optimizer: {lr: 0.01}
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0}
    eval: {every_steps: 3, metrics: [loss]}
  - name: dpo
    kind: preference
    loss: dpo
    model: {from_stage: sft}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    log_every_steps: 2
    regularization: {dropout: 0.0}
    eval: {every_steps: 3, metrics: [loss, accuracy]}
  - name: dpo-lora
    kind: preference
    loss: dpo
    model: {from_stage: sft}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    optimizer: {lr: 0.01}
    batch_size: 8
    grad_accum: 2
    max_steps: 4
    log_every_steps: 2
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0, output: adapter}
    eval: {every_steps: 2, metrics: [loss, accuracy]}
  - name: simpo
    kind: preference
    loss: simpo
    margin: 0.5
    model: {from_stage: dpo-lora}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 4
    log_every_steps: 2
    regularization: {dropout: 0.0}
    eval: {every_steps: 4, metrics: [loss, accuracy]}
"""


def output_files(ws: Path, run_id: str) -> dict[str, list[str]]:
    """Each stage's output files (relative names), by stage folder."""
    stages = Path(show(ws, run_id)["run_dir"]) / "stages"
    return {
        folder.name: sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file())
        for folder in sorted(stages.iterdir())
    }


def test_lora_and_preference_stages_on_two_processes_equal_one(tmp_path, data_dir, prefs):
    import torch
    from peft import PeftModel
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
    )

    from engine.models.adapters import adapter_record, is_adapter_folder, merged_model

    plan_file = data_dir / f"lora-dpo-ddp-{tmp_path.name}.yaml"
    plan_file.write_text(ADAPTERS_PREFERENCE)
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "one", "--no-cache")
    stagelab(ws, "run", str(plan_file), "--name", "two", "--nproc", "2", "--no-cache")
    one_id, two_id = run_id_of(ws, "one"), run_id_of(ws, "two")
    assert show(ws, two_id)["status"] == "finished"
    ours = points(ws, two_id, tmp_path / "two.csv")
    theirs = points(ws, one_id, tmp_path / "one.csv")
    for stage in ("dpo", "dpo-lora", "simpo"):
        for key in ("train/loss", "train/reward_margin", "train/logp_rejected", "eval/accuracy"):
            assert any(k[0] == stage and k[2] == key for k in ours), (stage, key)
    assert any(k[0] == "cls" and k[2] == "model/trainable_parameters" for k in ours)
    # An implicit reward is a difference of log-probabilities of some 50 nats (times beta):
    # another summation order moves it by ~1e-6 however small the difference is.
    rewards = {k for k in theirs if "/reward_" in k[2] and k[2] != "train/reward_accuracy"}
    assert rewards and ours.keys() == theirs.keys()
    assert_close({k: ours[k] for k in rewards}, {k: theirs[k] for k in rewards}, REL_TOL, abs_=1e-5)
    rest = ours.keys() - rewards
    assert_close({k: ours[k] for k in rest}, {k: theirs[k] for k in rest}, REL_TOL)

    # The owner alone wrote each output, once: the same files as one process writes, and
    # they load (adapters in peft, merged models in transformers) to the same weights.
    files = output_files(ws, two_id)
    assert files == output_files(ws, one_id)
    assert not any(".partial" in f or "-partial" in f for names in files.values() for f in names)
    run_dirs = {r: Path(show(ws, r)["run_dir"]) / "stages" for r in (one_id, two_id)}

    def loaded(run_id: str, folder: str):
        out = run_dirs[run_id] / folder / "output"
        if folder.endswith("-cls"):
            assert is_adapter_folder(out) and Path(adapter_record(out)["base"]).is_relative_to(
                run_dirs[run_id]
            )
            base = AutoModelForSequenceClassification.from_pretrained(adapter_record(out)["base"])
            return PeftModel.from_pretrained(base, str(out)).merge_and_unload()
        if folder.endswith("-dpo-lora"):
            assert is_adapter_folder(out)
            return merged_model(out)
        assert not is_adapter_folder(out)
        auto = AutoModelForMaskedLM if folder.endswith("-mlm") else AutoModelForCausalLM
        return auto.from_pretrained(str(out))

    # Adam turns the float noise of a near-zero gradient into a step of up to lr (5e-4):
    # a few weights of a fully trained model differ (measured: 8e-5), the curves do not.
    for folder in files:
        mine, single = loaded(two_id, folder).state_dict(), loaded(one_id, folder).state_dict()
        assert mine.keys() == single.keys()
        for name, value in single.items():
            torch.testing.assert_close(mine[name], value, rtol=REL_TOL, atol=5e-4)


DPO_LORA_RESUME = """
name: dpo-lora-resume
stages:
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {builtin: gpt2-tiny, vocab_size: 200}
    data: {path: prefs.jsonl, prompt_column: prompt, response_column: chosen, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 4
    regularization: {dropout: 0.0}
  - name: dpo
    kind: preference
    loss: dpo
    model: {from_stage: sft}
    data: {path: prefs.jsonl, max_length: 32, eval_ratio: 0.2}
    optimizer: {lr: 0.01}
    batch_size: 8
    max_steps: 8
    log_every_steps: 2
    regularization: {dropout: 0.0}
    adapter: {rank: 4, dropout: 0.0, output: adapter}
    eval: {every_steps: 4, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 2}
"""


def test_sigkill_in_a_two_process_dpo_with_adapters_then_resume_is_exact(tmp_path, prefs):
    plan_file = prefs.parent / f"dpo-lora-resume-{tmp_path.name}.yaml"
    plan_file.write_text(DPO_LORA_RESUME)
    ws = tmp_path / "ws"
    stagelab(ws, "run", str(plan_file), "--name", "reference", "--nproc", "2", "--no-cache")
    run_id = stagelab(
        ws, "run", str(plan_file), "--name", "killed", "--nproc", "2", "--detach", "--no-cache"
    ).stdout.strip()
    pause_after_checkpoint(ws, run_id, 1)  # mid-DPO, after a checkpoint of the adapters
    other = int((Path(show(ws, run_id)["run_dir"]) / "rank1.pid").read_text())
    os.kill(other, signal.SIGKILL)
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 60, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout
    from engine.store import Store, queries

    resumed_at = queries.list_events(Store.open(ws / "stagelab.db"), run_id, kind="resume")
    assert resumed_at and "step 0" not in resumed_at[-1].message  # continued mid-stage
    ours = points(ws, run_id, tmp_path / "resumed.csv")
    theirs = points(ws, run_id_of(ws, "reference"), tmp_path / "reference.csv")
    assert any(k[0] == "dpo" and k[2] == "train/reward_margin" for k in ours)
    # Same world size: the adapters, optimizer and every rank's RNG come back exactly; the
    # reference (the base with the adapters off) is the same base.
    assert ours == theirs
