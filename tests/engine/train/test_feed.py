"""Batches built ahead by DataLoader workers, padded to a multiple of 8 and grouped by
length (engine/train/feed.py, engine/train/batches.py): the same batches and positions
for any worker count, exact resume after SIGKILL with workers running, padding that
changes no loss, and grouping that keeps every row once per epoch with less padding."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
import torch

from engine.data.encode import pad_batch
from engine.train.batches import grouped_order
from engine.train.feed import Feed
from engine.train.recipe import Targets
from tests.engine.process.live_kill import kill_mid_stage, resume_and_kill_mid_stage
from tests.engine.process.test_runs import export, show, stagelab, wait_for

MLM = """
name: feed
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 1
    augmentation: {swap_prob: 0.1, mask_prob: 0.05, delete_prob: 0.05}
    batching: {group_by_length: true, pad_to_multiple_of: 8}
"""

JOINT = """
name: feed
stages:
  - name: multi
    kind: joint
    model: {builtin: bert-tiny, vocab_size: 200}
    members:
      - {name: mood, data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}}
      - {name: again, weight: 0.5, data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.5}}
    sampling: temperature
    batch_size: 8
    max_steps: 1
"""


def feed_of(result, workers: int, positions: dict, start: int) -> Feed:
    stage = result.ctx.stage
    batching = stage.batching.model_copy(update={"workers": workers})
    ctx = SimpleNamespace(
        stage=stage.model_copy(update={"batching": batching}), device=torch.device("cpu")
    )
    return Feed(ctx, result.recipe, positions, start)


@pytest.mark.slow
@pytest.mark.parametrize("plan", [MLM, JOINT], ids=["mlm-grouped", "joint-sampled"])
def test_workers_build_the_same_batches_and_positions_as_the_training_thread(train_stage_of, plan):
    result = train_stage_of(plan)
    # Start mid-epoch, from positions a checkpoint could hold.
    inline_positions: dict = {}
    inline = feed_of(result, 0, inline_positions, 0)
    for micro_step in range(7):
        inline.next(micro_step)
    ahead_positions = json.loads(json.dumps(inline_positions))
    ahead = feed_of(result, 3, ahead_positions, 7)
    assert ahead.workers == 3
    for micro_step in range(7, 60):  # past an epoch end of the short sources
        want, got = inline.next(micro_step), ahead.next(micro_step)
        assert want.batch.keys() == got.batch.keys()
        for key in want.batch:
            assert torch.equal(want.batch[key], got.batch[key]), (micro_step, key)
        assert (want.targets, want.samples, want.tokens) == (got.targets, got.samples, got.tokens)
        assert ahead_positions == inline_positions
    ahead.close()


def test_padding_to_a_multiple_stops_at_the_longest_row():
    rows = [{"input_ids": [5] * n, "labels": 1} for n in (3, 9)]
    assert pad_batch(rows, 0)["input_ids"].shape == (2, 9)
    assert pad_batch(rows, 0, multiple=8)["input_ids"].shape == (2, 16)
    assert pad_batch(rows, 0, multiple=8, limit=12)["input_ids"].shape == (2, 12)
    padded = pad_batch(rows, 0, multiple=8)
    assert padded["attention_mask"].sum(1).tolist() == [3, 9]
    assert padded["input_ids"][0, 3:].eq(0).all() and padded["labels"].tolist() == [1, 1]
    pairs = [{"input_ids": [4] * 3, "rejected_input_ids": [6] * 10, "labels": [1, 2, 3]}]
    pairs[0]["rejected_labels"] = [7] * 10
    both = pad_batch(pairs, 0, multiple=8)
    assert both["input_ids"].shape == (1, 8) and both["rejected_input_ids"].shape == (1, 16)
    assert both["labels"][0].tolist() == [1, 2, 3] + [-100] * 5


@pytest.mark.slow
def test_padding_to_a_multiple_of_8_changes_no_loss(train_stage_of):
    result = train_stage_of(
        MLM.replace("kind: pretrain", "kind: train")
        .replace("corpus.txt", "sentiment.csv")
        .replace("eval_ratio: 0.1", "eval_ratio: 0.2")
    )
    recipe = result.recipe
    recipe.model.eval()
    rows = recipe.train_rows[:16]
    targets = Targets({"train": 16})
    with torch.no_grad():
        tight = recipe.loss("train", pad_batch(rows, recipe.pad_id), targets).loss
        wide = recipe.loss("train", pad_batch(rows, recipe.pad_id, multiple=32), targets).loss
    assert pad_batch(rows, recipe.pad_id, multiple=32)["input_ids"].shape[1] == 32
    assert wide.item() == pytest.approx(tight.item(), rel=1e-5)


def test_grouped_order_keeps_every_row_once_and_pads_less():
    rng = random.Random(0)
    # Lengths of short and long texts mixed, as real review data has them.
    lengths = [min(int(rng.lognormvariate(3.2, 0.8)), 256) + 1 for _ in range(1000)]
    batch = 16

    def order(epoch: int, grouped: bool) -> list[int]:
        gen = torch.Generator().manual_seed(epoch)
        if grouped:
            return grouped_order(lengths, batch, gen)
        return torch.randperm(len(lengths), generator=gen).tolist()

    def padding(o: list[int]) -> float:
        full = len(o) // batch
        cells = sum(max(lengths[i] for i in o[b * batch : (b + 1) * batch]) for b in range(full))
        return 1 - sum(lengths[i] for i in o[: full * batch]) / (cells * batch)

    grouped = order(1, True)
    assert sorted(grouped) == list(range(1000))
    assert grouped == order(1, True) and grouped != order(2, True)
    assert padding(grouped) < 0.1 < 0.5 < padding(order(1, False))
    # The batches' order is random, not longest first: long batches are spread out.
    widths = [max(lengths[i] for i in grouped[b * batch : (b + 1) * batch]) for b in range(62)]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)


@pytest.mark.slow
def test_sigkill_with_batch_workers_then_resume_equals_a_run_without_workers(tmp_path, data_dir):
    plan = """
name: feed-kill
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 30
    log_every_steps: 5
    augmentation: {swap_prob: 0.1}
    eval: {every_steps: 10}
    checkpoint: {every_steps: 7}
    batching: {workers: WORKERS, group_by_length: true, pad_to_multiple_of: 8}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    grad_accum: 2
    max_steps: 20
    log_every_steps: 4
    eval: {every_steps: 10, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 6}
    batching: {workers: WORKERS}
"""
    ref_plan, plan_file = data_dir / "feed-ref.yaml", data_dir / "feed-workers.yaml"
    ref_plan.write_text(plan.replace("WORKERS", "0"))
    plan_file.write_text(plan.replace("WORKERS", "2"))
    ref_ws, ws = tmp_path / "reference", tmp_path / "ws"
    stagelab(ref_ws, "run", str(ref_plan), "--name", "reference")
    ref_id = json.loads(stagelab(ref_ws, "ls", "--json").stdout)["experiments"][0]["runs"][0]["id"]

    run_id = stagelab(ws, "run", str(plan_file), "--name", "killed", "--detach").stdout.strip()
    kill_mid_stage(ws, run_id, 0)
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    resume_and_kill_mid_stage(ws, run_id, 1)
    wait_for(lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted")
    assert "finished" in stagelab(ws, "resume", run_id).stdout

    ours = export(ws, run_id, tmp_path / "resumed.csv")
    assert ours == export(ref_ws, ref_id, tmp_path / "reference.csv")
    assert {key for _, _, key, _ in ours} >= {"train/loss", "eval/loss", "eval/accuracy"}
