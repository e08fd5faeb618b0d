"""`distill` stages for real (tiny models, CPU): the loss against a hand computation, a
teacher that stays bit-identical and out of checkpoints, its score on the same eval rows,
students built, cut from the teacher or projected, unlabelled text, and the problems that
validation or the stage itself reports."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from engine.data.encode import pad_batch
from engine.spec import PlanInvalid, load_plan_text
from engine.train.recipe import Targets

pytestmark = pytest.mark.slow

TEACHER = """
name: t
stages:
  - name: teacher
    kind: train
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25}
    batch_size: 8
    max_steps: 6
"""

DISTILL = """
  - name: student
    kind: distill
    teacher: {from_stage: teacher}
    model: {builtin: bert-tiny}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.25}
    alpha: 0.3
    temperature: 2.0
    batch_size: 8
    max_steps: 4
    eval: {metrics: [loss, accuracy]}
    checkpoint: {every_steps: 4}
"""


@pytest.fixture
def teacher_dir(train_stage_of):
    return train_stage_of(TEACHER).recipe.save()[0]


def hand_loss(recipe, batch, targets):
    """α·CE + (1−α)·T²·KL per example, written out with Python floats."""
    stage = recipe.ctx.stage
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        s_logits = recipe.model(**inputs).logits.tolist()
        t_logits = recipe.teacher(**inputs).logits.tolist()
    t, ce, kl = stage.temperature, 0.0, 0.0
    for s_row, t_row, label in zip(s_logits, t_logits, batch["labels"].tolist(), strict=True):
        ce += math.log(sum(math.exp(v) for v in s_row)) - s_row[label]
        zs = sum(math.exp(v / t) for v in s_row)
        zt = sum(math.exp(v / t) for v in t_row)
        for s_v, t_v in zip(s_row, t_row, strict=True):
            p = math.exp(t_v / t) / zt
            kl += p * (math.log(p) - math.log(math.exp(s_v / t) / zs))
    task, kd = ce / targets, t * t * kl / targets
    return stage.alpha * task + (1 - stage.alpha) * kd, task, kd


def test_distill_loss_parts_frozen_teacher_and_its_score(train_stage_of, teacher_dir):
    seen = {}

    def before(recipe):
        seen["teacher"] = {k: v.clone() for k, v in recipe.teacher.state_dict().items()}
        recipe.model.eval()  # no dropout, so the hand computation sees the same forward
        batch = recipe.prepare(
            pad_batch(recipe.train_rows[:8], recipe.pad_id), seed=0, micro_step=0, train=True
        )
        targets = recipe.count_targets(batch) + 3  # as if other micro-batches shared the step
        out = recipe.loss("train", batch, Targets({"train": targets}))
        seen["loss"] = (out.loss.item(), out.parts["loss_task"].item(), out.parts["loss_kd"].item())
        seen["hand"] = hand_loss(recipe, batch, targets)

    result = train_stage_of(
        TEACHER + DISTILL, index=1, outputs={"teacher": teacher_dir}, before=before
    )
    assert result.outcome == "finished"
    for ours, hand in zip(seen["loss"], seen["hand"], strict=True):
        assert ours == pytest.approx(hand, rel=1e-5, abs=1e-7)  # fp32 against float64

    recipe = result.recipe
    # The teacher never changed, ran in eval mode without gradients, and is not checkpointed.
    assert not recipe.teacher.training
    for key, value in recipe.teacher.state_dict().items():
        assert torch.equal(value, seen["teacher"][key]), key
    saved = AutoModelForSequenceClassification.from_pretrained(str(teacher_dir)).state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in recipe.teacher.state_dict().items())
    folder = result.ctx.run_dir / "checkpoints" / "stage1-step4"
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "state.pt"]

    losses, tasks, kds = (result.series(f"train/{k}") for k in ("loss", "loss_task", "loss_kd"))
    assert sorted(losses) == sorted(tasks) == sorted(kds) == [1, 2, 3, 4]
    for step in losses:
        assert losses[step] == pytest.approx(0.3 * tasks[step] + 0.7 * kds[step], rel=1e-5)
    # The teacher's score on the same eval rows, once, beside the student's.
    assert list(result.series("teacher/accuracy")) == [0]
    assert 4 in result.series("eval/accuracy")
    (event,) = result.events("teacher")
    assert len(event.data["sha256"]) == 64 and event.data["layers"] == 2
    assert result.series("teacher/parameters")[0] == event.data["parameters"]
    (scored,) = result.events("teacher_eval")
    assert scored.data["metrics"]["accuracy"] == result.series("teacher/accuracy")[0]
    # The student's head has the teacher's labels.
    assert recipe.model.config.id2label == recipe.teacher.config.id2label


def test_only_the_owner_scores_the_teacher(train_stage_of, data_dir):
    """With several processes the teacher is scored (and recorded) by the owner alone."""
    import dataclasses

    from engine.recipes import DistillRecipe
    from engine.runtime.distributed import Dist
    from engine.spec import load_plan_text
    from engine.store import queries

    first = train_stage_of(TEACHER.replace("max_steps: 6", "max_steps: 1"))
    folder = first.recipe.save()[0]
    for rank in (1, 0):  # another process of a two-process run, then the owner
        ctx = dataclasses.replace(
            first.ctx,
            plan=load_plan_text(TEACHER + DISTILL),
            index=1,
            outputs={"teacher": folder},
            dist=Dist(world=2, rank=rank),
        )
        DistillRecipe(ctx).setup()
        ctx.recorder.flush()
        steps, _ = queries.read_series(first.store, first.run_id, "teacher/accuracy", stage_idx=1)
        scored = len(queries.list_events(first.store, first.run_id, kind="teacher_eval"))
        assert (list(steps), scored) == (([], 0) if rank else ([0], 1))


def test_a_student_cut_from_the_teacher_starts_with_its_lower_layers(train_stage_of, teacher_dir):
    plan = TEACHER + DISTILL.replace("{builtin: bert-tiny}", "{from_stage: teacher}").replace(
        "alpha: 0.3", "alpha: 0.3\n    student_layers: 1"
    )
    seen = {}

    def before(recipe):
        layer = recipe.model.bert.encoder.layer[0].state_dict()
        seen["layer0"] = {k: v.clone() for k, v in layer.items()}
        seen["teacher0"] = recipe.teacher.bert.encoder.layer[0].state_dict()

    result = train_stage_of(plan, index=1, outputs={"teacher": teacher_dir}, before=before)
    assert result.recipe.model.config.num_hidden_layers == 1
    assert all(torch.equal(v, seen["teacher0"][k]) for k, v in seen["layer0"].items())


def test_hidden_states_of_other_widths_meet_through_a_trained_projection(
    train_stage_of, teacher_dir
):
    plan = TEACHER + DISTILL.replace("{builtin: bert-tiny}", "{builtin: bert-mini}").replace(
        "alpha: 0.3", "alpha: 0.3\n    hidden_weight: 0.5"
    )
    result = train_stage_of(plan, index=1, outputs={"teacher": teacher_dir})
    assert result.recipe.projection is not None
    assert sorted(result.series("train/loss_hidden")) == [1, 2, 3, 4]
    folder = result.ctx.run_dir / "checkpoints" / "stage1-step4"
    assert "projection.safetensors" in {p.name for p in folder.iterdir()}


def test_unlabelled_text_distils_with_alpha_zero(train_stage_of, teacher_dir, data_dir):
    (data_dir / "raw.csv").write_text(
        "text\n" + "\n".join(line for line in (data_dir / "corpus.txt").read_text().splitlines())
    )
    plan = TEACHER + DISTILL.replace("sentiment.csv", "raw.csv").replace("alpha: 0.3", "alpha: 0")
    result = train_stage_of(plan, index=1, outputs={"teacher": teacher_dir})
    assert result.outcome == "finished"
    assert sorted(result.series("train/loss_kd")) == [1, 2, 3, 4]
    assert result.series("train/loss_task") == {}
    # Evaluation scores agreement with the teacher (its choices are the labels).
    assert 0 <= result.series("eval/accuracy")[4] <= 1


def test_a_classifier_student_with_another_vocabulary_reads_with_its_own(
    train_stage_of, teacher_dir, tmp_path
):
    """Teacher and student compare label distributions, so each reads the text with its
    own tokenizer (it once failed: "vocabulary (n tokens) is not the teacher's (n tokens)")."""
    other = train_stage_of(
        TEACHER.replace("vocab_size: 200", "vocab_size: 120")
        .replace("sentiment.csv", "corpus.txt")
        .replace("kind: train", "kind: pretrain")
    ).recipe.save()[0]
    plan = TEACHER + DISTILL.replace("{from_stage: teacher}", f"{{path: {teacher_dir}}}").replace(
        "{builtin: bert-tiny}", f"{{path: {other}}}"
    )
    result = train_stage_of(plan, index=1)
    assert result.outcome == "finished" and result.recipe.apart
    assert "teacher_input_ids" in result.recipe.train_rows[0]


def problems(text: str, plan_dir=None) -> list[str]:
    with pytest.raises(PlanInvalid) as info:
        load_plan_text(text, plan_dir=plan_dir)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_validation_names_what_cannot_be_distilled(data_dir):
    # The student's tokenizer was learned by another stage: another vocabulary, refused
    # where the outputs are tokens or hidden states are compared.
    own = (
        TEACHER.replace("name: teacher", "name: other")
        + TEACHER.split("stages:")[1]
        + DISTILL.replace("{builtin: bert-tiny}", "{from_stage: other}")
    )
    load_plan_text(own)  # a classifier: each model reads the text with its own tokenizer
    mlm = own.replace("alpha: 0.3", "alpha: 0.3\n    task: masked_lm")
    assert any("stages[2].model" in p and "vocabulary" in p for p in problems(mlm))
    hidden = own.replace("alpha: 0.3", "alpha: 0.3\n    hidden_weight: 0.5")
    assert any("stages[2].hidden_weight" in p and "tokenizer" in p for p in problems(hidden))
    # Labels the teacher never saw.
    (data_dir / "three.csv").write_text(
        "text,label\ngood day,positive\nbad day,negative\nso so,neutral\n"
    )
    labels = TEACHER + DISTILL.replace("path: sentiment.csv", "path: three.csv")
    found = problems(labels, plan_dir=data_dir)
    assert any("stages[1].data" in p and "neutral" in p for p in found), found
    # A head for another task, a built-in teacher, unlabelled token tagging.
    task = TEACHER + DISTILL.replace("alpha: 0.3", "alpha: 0.3\n    task: token_classification")
    assert any("stages[1].task" in p and "sequence classification" in p for p in problems(task))
    untrained = TEACHER + DISTILL.replace("{from_stage: teacher}", "{builtin: bert-tiny}")
    assert any("stages[1].teacher" in p and "trained already" in p for p in problems(untrained))
    tags = TEACHER + DISTILL.replace("alpha: 0.3", "alpha: 0\n    task: token_classification")
    assert any("stages[1].alpha" in p for p in problems(tags))


def test_language_models_distil_per_masked_token(train_stage_of):
    mlm = """
name: t
stages:
  - name: teacher
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 4
  - name: student
    kind: distill
    task: masked_lm
    teacher: {from_stage: teacher}
    model: {from_stage: teacher}
    student_layers: 1
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 3
    eval: {metrics: [loss, accuracy]}
"""
    teacher = train_stage_of(mlm).recipe.save()[0]
    result = train_stage_of(mlm, index=1, outputs={"teacher": teacher})
    assert sorted(result.series("train/loss_kd")) == [1, 2, 3]
    assert sorted(result.series("train/loss_task")) == [1, 2, 3]
    assert 0 in result.series("teacher/accuracy") and 3 in result.series("eval/accuracy")


def test_token_tagging_distils_per_labelled_token(train_stage_of):
    tagging = """
name: t
stages:
  - name: teacher
    kind: train
    task: token_classification
    model: {builtin: bert-tiny, vocab_size: 120}
    data: {path: entities.jsonl, text_column: tokens, label_column: tags, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
  - name: student
    kind: distill
    task: token_classification
    teacher: {from_stage: teacher}
    model: {builtin: bert-tiny}
    student_layers: 1
    data: {path: entities.jsonl, text_column: tokens, label_column: tags, eval_ratio: 0.2}
    alpha: 0.5
    batch_size: 8
    max_steps: 4
    eval: {metrics: [loss, accuracy]}
"""
    teacher = train_stage_of(tagging).recipe.save()[0]
    result = train_stage_of(tagging, index=1, outputs={"teacher": teacher})
    assert result.outcome == "finished"
    kd, task = result.series("train/loss_kd"), result.series("train/loss_task")
    assert sorted(kd) == sorted(task) == [1, 2, 3, 4]
    assert all(math.isfinite(v) and v >= 0 for v in [*kd.values(), *task.values()])
    assert 0 in result.series("teacher/accuracy") and 4 in result.series("eval/accuracy")


def test_instruction_tuning_distils_per_response_token(train_stage_of):
    sft = """
name: t
stages:
  - name: teacher
    kind: train
    task: causal_lm_sft
    model: {builtin: gpt2-tiny, vocab_size: 200}
    data: {path: instructions.jsonl, prompt_column: prompt, response_column: response, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 6
  - name: student
    kind: distill
    task: causal_lm_sft
    teacher: {from_stage: teacher}
    model: {from_stage: teacher}
    student_layers: 1
    data: {path: instructions.jsonl, prompt_column: prompt, response_column: response, eval_ratio: 0.2}
    alpha: 0.5
    batch_size: 8
    max_steps: 4
    eval: {metrics: [loss]}
"""
    teacher = train_stage_of(sft).recipe.save()[0]
    result = train_stage_of(sft, index=1, outputs={"teacher": teacher})
    assert result.outcome == "finished"
    kd = result.series("train/loss_kd")
    assert sorted(kd) == [1, 2, 3, 4] and all(math.isfinite(v) for v in kd.values())
    assert 0 in result.series("teacher/loss") and 4 in result.series("eval/loss")
