"""Losses on short texts: every row of one to three words gets a masked target, evaluation
is the token-weighted mean over the whole eval set, and batches without a labelled position
(rows of special tokens only) neither give NaN nor move the weights, and are
counted (real tiny models on CPU)."""

from __future__ import annotations

import math
import random

import pytest
import torch

from engine.data.encode import pad_batch

PLAN = """
name: short
stages:
  - name: mlm
    kind: pretrain
    objective: masked_lm
    model: {{builtin: bert-tiny, vocab_size: 120}}
    data: {{path: {file}, max_length: 16, eval_ratio: 0.3}}
    batch_size: 2
    max_steps: {steps}
    mlm_probability: {p}
    log_every_steps: 5
    eval: {{every_steps: 4, metrics: [loss, perplexity, accuracy]}}
"""

WORDS = "the a good bad day trip room team lab market fine dull".split()


@pytest.fixture(scope="module")
def short_lines(data_dir):
    """Lines of one to three words, as a corpus of titles or tags would have."""
    path = data_dir / "short_lines.txt"
    rng = random.Random(3)
    path.write_text(
        "".join(" ".join(rng.sample(WORDS, rng.randint(1, 3))) + "\n" for _ in range(80))
    )
    one = data_dir / "one_word_lines.txt"
    one.write_text("".join(rng.choice(WORDS) + "\n" for _ in range(40)))
    return path, one


def eval_batches(recipe, batch_size: int, seed: int):
    rows = recipe.eval_rows
    for n, start in enumerate(range(0, len(rows), batch_size)):
        batch = pad_batch(rows[start : start + batch_size], recipe.pad_id)
        yield recipe.prepare(batch, seed=seed + 1, micro_step=n, train=False)


def test_eval_loss_on_short_lines_is_the_token_weighted_mean(train_stage_of, short_lines):
    result = train_stage_of(PLAN.format(file=short_lines[0].name, steps=12, p=0.5))
    recipe, stage = result.recipe, result.ctx.stage
    losses = result.series("eval/loss")
    assert sorted(losses) == [4, 8, 12]
    assert all(math.isfinite(v) for v in losses.values())
    assert all(math.isfinite(v) for v in result.series("eval/perplexity").values())

    # Recompute the last evaluation by hand: the same masks, the final weights.
    model = recipe.model.eval()
    per_position, batch_means, empty = [], [], 0
    with torch.no_grad():
        for batch in eval_batches(recipe, stage.batch_size, stage.seed):
            labels = batch.pop("labels")
            keep = labels != -100
            if not keep.any():
                empty += 1
                continue
            logits = model(**batch).logits
            losses_here = torch.nn.functional.cross_entropy(
                logits[keep], labels[keep], reduction="none"
            ).double()
            per_position.append(losses_here)
            batch_means.append(losses_here.mean())
    assert empty == 0, "every row of a word or more has a masked position"
    every = torch.cat(per_position)
    assert losses[12] == pytest.approx(every.mean().item(), rel=1e-5)
    assert result.series("eval/perplexity")[12] == pytest.approx(math.exp(losses[12]), rel=1e-6)
    # The mean of batch means would be another number.
    assert abs(torch.stack(batch_means).mean().item() - losses[12]) > 1e-4

    # Every training step had a masked token (one per row at least), so every step learned.
    assert sorted(result.series("train/loss")) == sorted(result.series("train/lr"))
    assert sorted(result.series("train/lr")) == list(range(1, 13))
    assert result.events("empty_step") == []


def test_steps_without_a_labelled_position_leave_the_weights_untouched(train_stage_of, short_lines):
    initial = {}

    def keep_initial(recipe):
        initial.update({k: v.detach().clone() for k, v in recipe.model.state_dict().items()})

    # Rows of unknown tokens only (emoji read by a vocabulary without them): special
    # tokens are never masked, so no batch of these 6 steps has a target.
    unknown = short_lines[1].with_name("unknown_lines.txt")
    unknown.write_text("[UNK]\n[UNK] [UNK]\n" * 20)
    result = train_stage_of(PLAN.format(file=unknown.name, steps=6, p=0.15), before=keep_initial)
    assert result.outcome == "finished"
    assert result.series("train/loss") == {}
    assert sorted(result.series("train/lr")) == list(range(1, 7))
    after = result.recipe.model.state_dict()
    # AdamW's weight decay would move every weight if a step had been taken.
    assert all(torch.equal(initial[k], after[k]) for k in initial)
    warnings = result.events("empty_step")
    assert warnings and warnings[0].level == "warning"
    summary = [e for e in warnings if e.data and "empty_steps" in e.data]
    assert summary and summary[-1].data == {"empty_steps": 6, "steps": 6}
    # `show` counts them and says so under the stage.
    from engine.cli.show_commands import run_json
    from engine.store import queries

    shown = run_json(result.store, queries.get_run(result.store, result.run_id))["stages"][0]
    assert shown["steps_without_targets"] == 6
    assert "6 of 6 steps had no labelled position (no update)" in shown["warnings"]
