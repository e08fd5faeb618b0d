"""Early stopping hands on the best evaluation's weights, as `load_best_model_at_end`
does, also when the stage was resumed from a checkpoint (real tiny models on CPU)."""

from __future__ import annotations

import csv
import random

import pytest
import torch
from safetensors.torch import load_file

from engine.recipes import RECIPES
from engine.store import queries
from engine.train.loop import train_stage

PLAN = """
name: best
stages:
  - name: s
    kind: train
    model: {{builtin: bert-tiny, vocab_size: 200}}
    data: {{path: flipped, max_length: 24, eval_split: validation}}
    batch_size: 8
    max_steps: 40
    optimizer: {{lr: 0.003}}
    eval: {{every_steps: 2, metrics: [loss, accuracy]}}
    checkpoint: {{every_steps: 2, keep_last: 50}}
    regularization: {{early_stopping: {{metric: loss, patience: 2{extra}}}}}
"""


@pytest.fixture(scope="module")
def flipped(data_dir):
    """Training data whose eval split has the opposite labels: the better the model
    learns, the worse it evaluates, so the best evaluation comes early."""
    folder = data_dir / "flipped"
    folder.mkdir(exist_ok=True)
    rng = random.Random(5)
    cues = {"positive": "good great lovely", "negative": "bad awful dull"}
    filler = "the a this that item room trip day".split()
    for split, n, flip in (("train", 160, False), ("validation", 40, True)):
        with open(folder / f"{split}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            for _ in range(n):
                label = rng.choice(sorted(cues))
                words = rng.sample(filler, 3) + [rng.choice(cues[label].split())]
                shown = {"positive": "negative", "negative": "positive"}[label] if flip else label
                writer.writerow([" ".join(words), shown])
    return folder


def checkpoint_weights(result, step: int) -> dict[str, torch.Tensor]:
    folder = result.ctx.run_dir / "checkpoints" / f"stage0-step{step}"
    return load_file(str(folder / "model.safetensors"))


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def output_weights(result) -> dict[str, torch.Tensor]:
    result.recipe.save()
    return load_file(str(result.ctx.output_dir / "model.safetensors"))


def test_the_stage_output_is_the_best_evaluation(train_stage_of, flipped):
    result = train_stage_of(PLAN.format(extra=""))
    losses = result.series("eval/loss")
    assert result.outcome == "early_stopped"
    best_step = min(losses, key=losses.get)
    last = max(losses)
    assert best_step < last and losses[last] > losses[best_step]
    (event,) = result.events("best")
    assert event.data["best_step"] == best_step == event.data["output_step"]
    assert event.data["value"] == pytest.approx(losses[best_step])
    assert result.series("best/step") == {last: best_step}
    assert result.series("best/loss")[last] == pytest.approx(losses[best_step])
    out = output_weights(result)
    assert same(out, checkpoint_weights(result, best_step))
    assert not same(out, checkpoint_weights(result, last))
    # The copy of the best weights is gone once the output holds them.
    assert not list((result.ctx.run_dir / "best").glob("stage0-*"))


def test_restore_best_off_keeps_the_last_weights(train_stage_of, flipped):
    result = train_stage_of(PLAN.format(extra=", restore_best: false"))
    last = max(result.series("eval/loss"))
    assert same(output_weights(result), checkpoint_weights(result, last))
    (event,) = result.events("best")
    assert event.data["output_step"] == last != event.data["best_step"]
    assert not (result.ctx.run_dir / "best").exists()


def test_a_resumed_stage_still_hands_on_the_best_weights(train_stage_of, flipped):
    whole = train_stage_of(PLAN.format(extra=""))
    losses = whole.series("eval/loss")
    best_step, last = min(losses, key=losses.get), max(losses)
    resume_at = best_step + 2
    assert resume_at < last
    # A fresh recipe (a new process would build one) continues from the checkpoint after
    # the best step: the best weights come from the run folder, not from memory.
    ctx = whole.ctx
    queries.truncate_metrics_after(whole.store, whole.run_id, 0, resume_at)
    recipe = RECIPES["train"](ctx)
    recipe.setup()
    outcome = train_stage(
        ctx, recipe, resume_from=ctx.run_dir / "checkpoints" / f"stage0-step{resume_at}"
    )
    ctx.recorder.flush()
    assert outcome == "early_stopped"
    assert whole.series("eval/loss") == pytest.approx(losses)
    recipe.save()
    out = load_file(str(ctx.output_dir / "model.safetensors"))
    assert same(out, checkpoint_weights(whole, best_step))
