"""Packed stages in process (issue 32, item 2): a masked-LM pretraining and a DPO stage
with `packing: true` train on their packed sequences, count their steps from them, and
learn (their loss falls)."""

from __future__ import annotations

from engine.spec.schedule import stage_steps

MLM = """
name: packed-mlm
stages:
  - name: mlm
    kind: pretrain
    objective: masked_lm
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 40, eval_ratio: 0.1}
    packing: true
    epochs: 1
    batch_size: 8
    log_every_steps: 1
    optimizer: {lr: 0.003}
"""

DPO = """
name: packed-dpo
stages:
  - name: dpo
    kind: preference
    loss: dpo
    model: {builtin: llama-tiny, vocab_size: 200}
    data: {path: prefs.jsonl, max_length: 96, eval_ratio: 0.1}
    packing: true
    epochs: 1
    batch_size: 8
    log_every_steps: 1
    optimizer: {lr: 0.002}
    eval: {every_steps: 1000, metrics: [loss, accuracy]}
"""


def packed_sequences(result) -> tuple[int, int]:
    [event] = [e for e in result.events("data") if e.message.startswith("packing:")]
    return event.data["rows"], event.data["sequences"]


def test_a_packed_masked_lm_stage_trains_on_full_sequences(train_stage_of):
    result = train_stage_of(MLM)
    rows, sequences = packed_sequences(result)
    assert sequences * 3 < rows  # 5 to 12 words a line: several lines per 40 tokens
    recipe, stage = result.recipe, result.ctx.stage
    assert len(recipe.train_rows) == sequences
    assert recipe.steps() == stage_steps(stage, sequences)
    loss = result.series("train/loss")
    assert max(loss) == recipe.steps()
    assert loss[max(loss)] < loss[1]


def test_a_packed_dpo_stage_scores_every_pair_once_per_epoch(train_stage_of, prefs):
    result = train_stage_of(DPO)
    pairs, sequences = packed_sequences(result)
    assert sequences < pairs
    stage = result.ctx.stage
    assert result.recipe.steps() == stage_steps(stage, sequences)
    accuracy = result.series("train/reward_accuracy")
    assert len(accuracy) == result.recipe.steps()
    assert all(0.0 <= a <= 1.0 for a in accuracy.values())
