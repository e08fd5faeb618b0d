"""The recipe interfaces (engine.train.recipe): every runnable kind has a recipe, the
recipes fit their protocol, and the loop honours what the protocol promises (loss parts,
frozen modules, evaluation-only stages, one resumable position per data source, targets
counted per source)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import torch

from engine.recipes import RECIPES, StepLoss, TrainingRecipe
from engine.spec import RUNNABLE_KINDS
from engine.train.batches import Streams
from engine.train.evaluation import evaluate_stage
from engine.train.loop import LoopState
from engine.train.recipe import Scored, Targets, evaluation_only

PLANS = {
    "pretrain": """
name: t
stages:
  - name: s
    kind: pretrain
    objective: masked_lm
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, format: text, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
    checkpoint: {every_steps: 3}
""",
    "train": """
name: t
stages:
  - name: s
    kind: train
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25}
    batch_size: 8
    max_steps: 6
    checkpoint: {every_steps: 3}
""",
}


def test_every_runnable_kind_has_a_recipe_and_every_recipe_a_kind():
    assert set(RECIPES) == set(RUNNABLE_KINDS)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(PLANS))
def test_recipes_implement_the_protocol(train_stage_of, kind):
    result = train_stage_of(PLANS[kind])
    recipe = result.recipe
    assert isinstance(recipe, TrainingRecipe) and not evaluation_only(recipe)
    assert result.outcome == "finished"
    assert list(recipe.trained_modules()) == ["model"] and recipe.frozen_modules() == {}
    assert list(recipe.sources()) == ["train"] and recipe.steps() == 6
    outputs = recipe.save()
    assert outputs == [result.ctx.output_dir] and (outputs[0] / "config.json").exists()


@pytest.mark.slow
def test_loss_parts_are_recorded_beside_the_loss(train_stage_of):
    def add_parts(recipe):
        plain = recipe.loss

        def loss(source, batch, targets):
            out = plain(source, batch, targets)
            return StepLoss(out.loss, {"half": out.loss / 2})

        recipe.loss = loss

    result = train_stage_of(PLANS["train"], before=add_parts)
    losses, halves = result.series("train/loss"), result.series("train/half")
    assert sorted(halves) == sorted(losses) == list(range(1, 7))
    for step, value in losses.items():
        assert halves[step] == pytest.approx(value / 2, rel=1e-6)


@pytest.mark.slow
def test_frozen_modules_run_in_eval_mode_never_change_and_stay_out_of_checkpoints(
    train_stage_of,
):
    teachers = {}

    def add_teacher(recipe):
        teacher = copy.deepcopy(recipe.model)
        teacher.train()
        teachers["before"] = {k: v.clone() for k, v in teacher.state_dict().items()}
        teachers["module"] = teacher
        plain = recipe.loss

        def loss(source, batch, targets):
            # The teacher runs every step, as a distillation teacher would.
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            kd = teacher(**inputs).logits.float().pow(2).mean() * 0
            out = plain(source, batch, targets)
            return StepLoss(out.loss + kd, {"kd": kd})

        recipe.frozen_modules = lambda: {"teacher": teacher}
        recipe.loss = loss

    result = train_stage_of(PLANS["train"], before=add_teacher)
    teacher = teachers["module"]
    assert not teacher.training
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teachers["before"][key]), key
    folder = result.ctx.run_dir / "checkpoints" / "stage0-step6"
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "state.pt"]


class OnlyScores:
    """An evaluation-only recipe: predictions made in setup, scored once."""

    def __init__(self, logits, targets):
        self.scored = Scored(logits, targets, 2, ["no", "yes"], ["loss", "accuracy"])

    def setup(self) -> None:
        pass

    def scores(self) -> list[Scored]:
        return [self.scored]

    def save(self) -> list[Path]:
        return []


@pytest.mark.slow
def test_an_evaluation_only_stage_evaluates_once_without_steps(train_stage_of):
    ctx = train_stage_of(PLANS["train"].replace("max_steps: 6", "max_steps: 1")).ctx
    ctx.stage.batch_size = 3  # scored in batches as an evaluation reads rows: 3 + 2 rows
    logits = torch.log_softmax(torch.tensor([[2.0, 0.0]] * 3 + [[0.0, 1.0]] * 2), dim=-1)
    recipe = OnlyScores(logits, torch.tensor([0, 1, 0, 1, 1]))
    assert evaluation_only(recipe) and not isinstance(recipe, TrainingRecipe)
    assert evaluate_stage(ctx, recipe) == "finished"
    ctx.recorder.flush()
    from engine.store import queries

    def at(key):
        steps, values = queries.read_series(ctx.store, ctx.run_id, key, stage_idx=0)
        return dict(zip(steps, values, strict=True))

    # Step 0 (the trained stage's own evaluation is at step 1).
    assert at("eval/accuracy")[0] == pytest.approx(4 / 5)
    assert at("eval/loss")[0] == pytest.approx(-float(logits[range(5), [0, 1, 0, 1, 1]].mean()))


def test_the_step_counts_targets_per_source():
    targets = Targets.of_step([("a", 3), ("b", 0), ("a", 2), ("b", 4)])
    assert targets.by_source == {"a": 5, "b": 4} and targets.total == 9
    assert targets.of("a") == 5 and targets.of("c") == 0
    assert Targets.of_step([("a", 0), ("b", 0)]).total == 0  # a step with nothing to learn


def test_no_recipe_hook_is_read_with_getattr():
    engine = Path(__file__).resolve().parents[3] / "engine"
    found = subprocess.run(
        ["grep", "-rnE", r"(getattr|hasattr)\((self\.)?recipe", str(engine)],
        capture_output=True,
        text=True,
    )
    assert found.stdout == "", found.stdout


def test_every_source_resumes_from_its_own_position():
    def rows(first, n):
        return [{"input_ids": [first + i], "attention_mask": [1]} for i in range(n)]

    sources = {"a": rows(0, 10), "b": rows(100, 7)}

    def draws(streams, picks):
        return [streams[name].next()["input_ids"].tolist() for name in picks]

    picks = ["a", "b", "b", "a", "b", "a", "a", "b", "b", "a", "b"]
    whole = draws(Streams.open(sources, batch_size=3, seed=5, pad_id=0, positions={}), picks)
    positions: dict[str, list[int]] = {}
    first = draws(
        Streams.open(sources, batch_size=3, seed=5, pad_id=0, positions=positions), picks[:5]
    )
    saved = copy.deepcopy(positions)  # as a checkpoint holds them
    rest = draws(Streams.open(sources, batch_size=3, seed=5, pad_id=0, positions=saved), picks[5:])
    assert first + rest == whole
    # Each source has its own order: b is not a's order applied to other rows.
    assert saved["a"] != saved["b"]


def test_checkpoints_from_before_several_sources_resume_at_their_position():
    state = LoopState.from_saved({"step": 7, "micro_step": 7, "epoch": 2, "batch_in_epoch": 3})
    assert state.positions == {"train": [2, 3]} and state.step == 7
