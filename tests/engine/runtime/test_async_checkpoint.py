"""Checkpoints written off the training thread (engine/runtime/checkpoint_writer.py): the
snapshot is the weights at save time, the write happens on the writer thread, the row and
the pruning come only once the new folder is on disk, tied weights are stored as
safetensors' `save_model` stores them, and a failed write fails the run, keeps the previous
checkpoint and lets the run resume from it (a real engine process, a real failed write)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_model
from transformers import BertConfig, BertForMaskedLM

from engine.runtime import context as context_module
from engine.runtime.checkpoint import load_checkpoint, save_checkpoint, write_snapshot
from engine.runtime.checkpoint_writer import CheckpointWriteError
from engine.runtime.context import Control, StageContext
from engine.runtime.recorder import Recorder
from engine.spec import load_plan_text
from engine.store import Store, Workspace, queries
from engine.train.best import prune_best_before

PLAN = """
name: ckpt
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24}
    max_steps: 12
    checkpoint: {every_steps: 4, keep_last: 1}
"""


def tiny_mlm() -> BertForMaskedLM:
    """A bert-tiny masked LM: its decoder is tied to the word embeddings."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=300,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    return BertForMaskedLM(config)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    ids = torch.randint(0, 300, (4, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


@pytest.fixture
def ctx(tmp_path: Path, data_dir: Path):
    plan = load_plan_text(PLAN)
    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, plan.name, PLAN, str(data_dir))
    run_id = queries.create_run(
        store, exp, plan_text=PLAN, plan_dir=str(data_dir), gpus="cpu", runs_dir=workspace.runs_dir
    )
    queries.upsert_stage(store, run_id, 0, name="mlm", kind="pretrain", status="running")
    ctx = StageContext(
        index=0,
        plan=plan,
        plan_dir=data_dir,
        run_id=run_id,
        run_dir=workspace.run_dir(run_id),
        device=torch.device("cpu"),
        store=store,
        recorder=Recorder(store, run_id),
        control=Control(),
        cache_dir=workspace.root / "cache",
    )
    yield ctx
    ctx.writer.wait()


@pytest.fixture
def held_writer(monkeypatch):
    """The writer thread waits on `release` before it writes; `threads` says where it ran."""
    release, threads = threading.Event(), []

    def held(folder, snapshot):
        threads.append(threading.current_thread())
        assert release.wait(60), "the test never released the writer"
        return write_snapshot(folder, snapshot)

    monkeypatch.setattr(context_module, "write_snapshot", held)
    return release, threads


def stored_steps(ctx: StageContext) -> list[int]:
    ctx.recorder.flush()
    return sorted(c.step for c in queries.list_checkpoints(ctx.store, ctx.run_id))


def test_the_write_runs_on_the_writer_thread_with_the_weights_of_save_time(ctx, held_writer):
    release, threads = held_writer
    model = tiny_mlm()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    written = []
    # The second save copies into the first one's buffers, once that one is written.
    for step in (1, 2):
        release.clear()
        train_step(model, optimizer)
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        moments = [optimizer.state[p]["exp_avg"].clone() for p in model.parameters()]
        folder = ctx.save_checkpoint(
            {"model": model}, step, {"optimizer": optimizer.state_dict()}, "interval"
        )
        # save() returned while the writer is still held: training goes on meanwhile, and
        # its in-place updates must not reach the file.
        assert ctx.writer.busy and not folder.exists()
        train_step(model, optimizer)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        release.set()
        ctx.writer.wait()
        written.append((folder, weights, moments))

    assert len(threads) == 2 and threads[0] is threads[1]  # one writer thread
    assert threads[0] is not threading.main_thread()
    assert threads[0].name.startswith("stagelab-checkpoint")
    for folder, weights, moments in written:
        fresh = tiny_mlm()
        saved = load_checkpoint(folder, {"model": fresh})
        for key, value in fresh.state_dict().items():
            torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
        for i, moment in enumerate(moments):
            torch.testing.assert_close(saved["optimizer"]["state"][i]["exp_avg"], moment)


def test_row_event_and_pruning_come_only_once_the_new_folder_is_on_disk(ctx, held_writer):
    release, _ = held_writer
    model = tiny_mlm()
    best = ctx.run_dir / "best"
    for step in (1, 2, 9):  # older bests, the new checkpoint's best, a best written since
        (best / f"stage0-step{step}").mkdir(parents=True)
    release.set()
    first = ctx.save_checkpoint({"model": model}, 4, {"n": 4}, "interval")
    ctx.writer.wait()
    assert stored_steps(ctx) == [4]

    release.clear()
    seen = []
    second = ctx.save_checkpoint(
        {"model": model},
        8,
        {"n": 8},
        "interval",
        on_written=lambda: (seen.append(second.exists()), prune_best_before(ctx, 2)),
    )
    # Mid-write: the previous checkpoint, its row and every best folder are all still there.
    assert first.exists() and not second.exists()
    assert stored_steps(ctx) == [4]
    assert not queries.list_events(ctx.store, ctx.run_id, kind="checkpoint")[1:]
    assert sorted(p.name for p in best.iterdir()) == [f"stage0-step{s}" for s in (1, 2, 9)]
    release.set()
    ctx.writer.wait()
    assert seen == [True]  # the callback ran once the new folder existed
    assert stored_steps(ctx) == [4, 8]
    assert second.exists() and not first.exists()  # keep_last: 1, pruned after the row
    assert sorted(p.name for p in best.iterdir()) == ["stage0-step2", "stage0-step9"]
    events = queries.list_events(ctx.store, ctx.run_id, kind="checkpoint")
    assert [e.data["step"] for e in events] == [4, 8]


def test_tied_weights_are_stored_once_as_save_model_stores_them(tmp_path):
    model = tiny_mlm()
    decoder = model.cls.predictions.decoder.weight
    assert decoder.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    reference = tmp_path / "reference.safetensors"
    save_model(model, str(reference))
    folder = save_checkpoint(tmp_path / "ckpt", {"model": model}, {"step": 1})

    ours, theirs = load_file(folder / "model.safetensors"), load_file(reference)
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)
    with safe_open(folder / "model.safetensors", "pt") as a, safe_open(reference, "pt") as b:
        assert a.metadata() == b.metadata() and b.metadata()  # the dropped name, recorded

    fresh = tiny_mlm()
    with torch.no_grad():
        fresh.bert.embeddings.word_embeddings.weight.zero_()
    load_checkpoint(folder, {"model": fresh})
    tied = fresh.cls.predictions.decoder.weight
    assert tied.data_ptr() == fresh.bert.embeddings.word_embeddings.weight.data_ptr()
    torch.testing.assert_close(tied, decoder, rtol=0, atol=0)


def test_a_checkpoint_written_before_writes_moved_off_thread_still_loads(tmp_path):
    model = tiny_mlm()
    old = tmp_path / "old"
    old.mkdir()
    save_model(model, str(old / "model.safetensors"))  # what save_checkpoint did before
    torch.save({"step": 3}, old / "state.pt")
    fresh = tiny_mlm()
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    assert load_checkpoint(old, {"model": fresh}) == {"step": 3}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)


def test_a_failed_write_is_raised_on_the_training_thread_and_keeps_the_previous(ctx, monkeypatch):
    model = tiny_mlm()
    first = ctx.save_checkpoint({"model": model}, 4, {"n": 4}, "interval")
    ctx.writer.wait()
    stored_steps(ctx)  # the first row is stored (and older folders pruned)

    def full_disk(path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("engine.runtime.checkpoint.torch.save", full_disk)
    ctx.save_checkpoint({"model": model}, 8, {"n": 8}, "interval")
    with pytest.raises(CheckpointWriteError, match="step 8 could not be written.*No space left"):
        ctx.writer.wait()
    assert first.exists()
    assert [p.name for p in (ctx.run_dir / "checkpoints").iterdir()] == ["stage0-step4"]
    assert stored_steps(ctx) == [4]
    assert not queries.list_events(ctx.store, ctx.run_id, kind="checkpoint")[1:]


# --- a real engine process whose checkpoint write really fails ---------------------------

FAILING_PLAN = """
name: full-disk
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 12
    log_every_steps: 2
    eval: {every_steps: 6}
    checkpoint: {every_steps: 4}
"""

# Loaded by every Python process of the test through PYTHONPATH: the rename that completes
# the step-8 checkpoint fails as on a full disk (nothing else is touched).
FULL_DISK_HOOK = """
import errno, os

_replace = os.replace

def replace(src, dst, *args, **kwargs):
    if os.path.basename(str(src)).startswith(".tmp-stage0-step8-"):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))
    return _replace(src, dst, *args, **kwargs)

os.replace = replace
"""


def stagelab(ws: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_a_run_whose_checkpoint_cannot_be_written_fails_and_resumes_from_the_previous(
    tmp_path, data_dir
):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FULL_DISK_HOOK)
    plan = data_dir / f"full-disk-{tmp_path.name}.yaml"
    plan.write_text(FAILING_PLAN)
    ws = tmp_path / "ws"
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    failed = stagelab(ws, "run", str(plan), env={"PYTHONPATH": path})
    assert failed.returncode != 0, failed.stdout

    run_id = json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][0]["runs"][0]["id"]
    store = Store.open(Workspace.open(ws).db_path)
    run = queries.get_run(store, run_id)
    assert run.status == "failed"
    assert "step 8 could not be written" in run.error and "No space left" in run.error
    errors = queries.list_events(store, run_id, kind="error")
    assert any("CheckpointWriteError" in e.message for e in errors)
    stage = queries.list_stages(store, run_id)[0]
    assert stage.status != "finished"
    # The previous checkpoint is whole and recorded; the failed one left nothing behind.
    checkpoints = Path(run.run_dir) / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["stage0-step4"]
    assert [c.step for c in queries.list_checkpoints(store, run_id)] == [4]

    resumed = stagelab(ws, "resume", run_id)  # the disk has room again
    assert resumed.returncode == 0, resumed.stderr
    assert queries.get_run(store, run_id).status == "finished"
    (event,) = queries.list_events(store, run_id, kind="resume")
    assert "resumed at step 4" in event.message
    steps, _ = queries.read_series(store, run_id, "train/loss", stage_idx=0)
    assert steps == list(range(1, 13))  # continued from step 4: none repeated, none missing
