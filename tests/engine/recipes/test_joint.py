"""`joint` stages for real (tiny models, CPU): the step's loss against a hand computation
for a shared encoder and for mutual learning, the sampling rules, per-member records and
outputs that plain `transformers` loads, learning-rate multipliers, and the problems
validation reports."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from engine.recipes.joint import member_for
from engine.spec import PlanInvalid, load_plan_text
from engine.spec.stages import JointStage
from engine.train.batches import Streams
from engine.train.optim import build_optimizer
from engine.train.recipe import Targets

pytestmark = pytest.mark.slow


def shared_plan(csv_path: Path, sampling: str = "all") -> str:
    return f"""
name: j
stages:
  - name: multitask
    kind: joint
    model: {{builtin: bert-tiny, vocab_size: 200}}
    members:
      - name: mood
        data: {{path: {csv_path}, max_length: 24, eval_ratio: 0.25, test_ratio: 0.2}}
        metrics: [loss, accuracy]
      - name: strength
        task: sequence_regression
        weight: 0.5
        lr_multiplier: 3.0
        data: {{path: {csv_path}, label_column: score, max_length: 24, eval_ratio: 0.25, test_ratio: 0.2}}
        metrics: [loss, mae]
    sampling: {sampling}
    batch_size: 8
    grad_accum: 2
    max_steps: 4
    eval: {{every_steps: 2}}
"""


def mutual_plan(csv_path: Path) -> str:
    return f"""
name: m
stages:
  - name: pair
    kind: joint
    coupling: mutual
    members:
      - name: small
        model: {{builtin: bert-tiny, vocab_size: 200}}
        data: {{path: {csv_path}, max_length: 24, eval_ratio: 0.25}}
      - name: wide
        model: {{builtin: bert-mini}}
        weight: 2.0
        data: {{path: {csv_path}, max_length: 24, eval_ratio: 0.25}}
    mutual_weight: 0.7
    mutual_temperature: 2.0
    batch_size: 8
    max_steps: 3
    eval: {{metrics: [loss, accuracy]}}
"""


def step_batches(recipe):
    """The first optimizer step's micro-batches (source, batch), as the loop draws them."""
    streams = Streams.open(
        recipe.sources(),
        batch_size=8,
        seed=recipe.ctx.stage.seed,
        pad_id=recipe.pad_id,
        positions={},
    )
    micro = recipe.loop_settings().micro_batches_per_step
    return [(d.source, d.batch) for d in (recipe.draw(streams, m) for m in range(micro))]


def step_targets(recipe, batches):
    """The step's labelled positions per member, as the loop sums them."""
    return Targets.of_step((source, recipe.count_targets(b)) for source, b in batches)


def ce_mean(logits: list[list[float]], labels: list[int]) -> float:
    return sum(
        math.log(sum(math.exp(v) for v in row)) - row[y]
        for row, y in zip(logits, labels, strict=True)
    ) / len(labels)


def test_shared_encoder_step_loss_is_the_weighted_sum_of_member_means(train_stage_of, scored_csv):
    seen = {}

    def before(recipe):
        mood, strength = recipe.members
        # One encoder object under both heads.
        assert mood.model.bert is strength.model.bert
        for m in recipe.members:
            m.model.eval()  # no dropout, so the hand computation sees the same forward
        batches = step_batches(recipe)
        assert [source for source, _ in batches] == ["mood", "strength", "mood", "strength"]
        targets = step_targets(recipe, batches)
        assert targets.by_source == {"mood": 16, "strength": 16}
        outs = [recipe.loss(source, b, targets) for source, b in batches]
        seen["ours"] = sum(o.loss.item() for o in outs)
        # By hand: CE over the mood rows of the step, MSE over the strength rows.
        logits, labels, errors = [], [], []
        with torch.no_grad():
            for source, b in batches:
                inputs = {k: v for k, v in b.items() if k != "labels"}
                if source == "mood":
                    logits += mood.model(**inputs).logits.tolist()
                    labels += b["labels"].tolist()
                else:
                    predicted = strength.model(**inputs).logits.squeeze(-1).tolist()
                    errors += [
                        (p - t) ** 2 for p, t in zip(predicted, b["labels"].tolist(), strict=True)
                    ]
        seen["hand"] = 1.0 * ce_mean(logits, labels) + 0.5 * sum(errors) / len(errors)
        # lr_multiplier: the strength head's parameters at 3x the stage's rate.
        optimizer = build_optimizer(
            torch.nn.ModuleDict(recipe.trained_modules()),
            recipe.ctx.stage.optimizer,
            torch.device("cpu"),
            recipe.loop_settings().lr_multipliers,
        )
        head = {id(p) for p in strength.model.classifier.parameters()}
        for group in optimizer.param_groups:
            scale = 3.0 if head & {id(p) for p in group["params"]} else 1.0
            assert group["lr"] == pytest.approx(recipe.ctx.stage.optimizer.lr * scale)

    result = train_stage_of(shared_plan(scored_csv), before=before)
    assert result.outcome == "finished"
    assert seen["ours"] == pytest.approx(seen["hand"], rel=1e-5)

    total, mood, strength = (
        result.series(k) for k in ("train/loss", "train/loss/mood", "train/loss/strength")
    )
    assert sorted(total) == sorted(mood) == sorted(strength) == [1, 2, 3, 4]
    for step in total:
        assert total[step] == pytest.approx(mood[step] + 0.5 * strength[step], rel=1e-5)
    for step in (2, 4):
        loss = result.series("eval/loss")[step]
        parts = (
            result.series("eval/loss/mood")[step] + 0.5 * result.series("eval/loss/strength")[step]
        )
        assert loss == pytest.approx(parts, rel=1e-9)
        assert 0 <= result.series("eval/accuracy/mood")[step] <= 1
        assert result.series("eval/mae/strength")[step] >= 0
    assert list(result.series("test/accuracy/mood")) == [4]
    assert list(result.series("test/mae/strength")) == [4]

    # A complete model folder per member; plain transformers gives the engine's logits.
    out, *folders = result.recipe.save()
    assert [f.name for f in folders] == ["mood", "strength"] and (out / "joint.json").exists()
    _, batch = step_batches(result.recipe)[0]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    for member, folder in zip(result.recipe.members, folders, strict=True):
        loaded = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
        member.model.eval()
        with torch.no_grad():
            assert torch.allclose(loaded(**inputs).logits, member.model(**inputs).logits, atol=1e-6)
    encoders = [
        AutoModelForSequenceClassification.from_pretrained(str(f)).bert.state_dict()
        for f in folders
    ]
    assert all(torch.equal(v, encoders[1][k]) for k, v in encoders[0].items())
    assert (
        AutoModelForSequenceClassification.from_pretrained(str(folders[1])).config.problem_type
        == "regression"
    )


def kl(p_logits: list[float], q_logits: list[float], t: float) -> float:
    zp = sum(math.exp(v / t) for v in p_logits)
    zq = sum(math.exp(v / t) for v in q_logits)
    return sum(
        math.exp(a / t) / zp * (a / t - math.log(zp) - (b / t - math.log(zq)))
        for a, b in zip(p_logits, q_logits, strict=True)
    )


def test_mutual_loss_adds_each_members_divergence_from_the_others(train_stage_of, scored_csv):
    seen = {}

    def before(recipe):
        small, wide = recipe.members
        assert small.model.config.hidden_size != wide.model.config.hidden_size
        for m in recipe.members:
            m.model.eval()
        batches = step_batches(recipe)
        targets = step_targets(recipe, batches)
        outs = [recipe.loss(source, b, targets) for source, b in batches]
        seen["ours"] = [o.loss.item() for o in outs]
        seen["mutual"] = [o.parts["loss_mutual"].item() for o in outs]
        hand, hand_mutual = [], []
        with torch.no_grad():
            for source, b in batches:
                inputs = {k: v for k, v in b.items() if k != "labels"}
                a = small.model(**inputs).logits.tolist()
                w = wide.model(**inputs).logits.tolist()
                labels = b["labels"].tolist()
                t = 2.0
                pairs = [kl(wr, ar, t) for ar, wr in zip(a, w, strict=True)] + [
                    kl(ar, wr, t) for ar, wr in zip(a, w, strict=True)
                ]
                # Mean over the 2 ordered pairs of the mean over rows, T², over 2 micro-batches.
                mutual = t * t * sum(pairs) / len(a) / 2 / 2
                if source == "small":
                    task = (
                        1.0
                        * sum(
                            math.log(sum(math.exp(v) for v in row)) - row[y]
                            for row, y in zip(a, labels, strict=True)
                        )
                        / targets.of("small")
                    )
                else:
                    task = (
                        2.0
                        * sum(
                            math.log(sum(math.exp(v) for v in row)) - row[y]
                            for row, y in zip(w, labels, strict=True)
                        )
                        / targets.of("wide")
                    )
                hand.append(task + 0.7 * mutual)
                hand_mutual.append(mutual)
        seen["hand"], seen["hand_mutual"] = hand, hand_mutual

    result = train_stage_of(mutual_plan(scored_csv), before=before)
    assert result.outcome == "finished"
    assert seen["ours"] == pytest.approx(seen["hand"], rel=1e-5)
    assert seen["mutual"] == pytest.approx(seen["hand_mutual"], rel=1e-4, abs=1e-7)  # fp32
    assert sorted(result.series("train/loss_mutual")) == [1, 2, 3]
    assert (
        set(result.series("eval/accuracy/small")) == set(result.series("eval/accuracy/wide")) == {3}
    )


def test_sampling_rules_pick_members_deterministically(scored_csv):
    def stage(sampling: str, **extra) -> JointStage:
        plan = load_plan_text(shared_plan(scored_csv, sampling))
        return plan.stages[0].model_copy(update=extra)

    rows = [300, 100]
    every = stage("all")
    assert [member_for(every, rows, m) for m in range(6)] == [0, 1, 0, 1, 0, 1]
    turns = stage("round_robin")  # grad_accum 2: one member per step of two micro-batches
    assert [member_for(turns, rows, m) for m in range(8)] == [0, 0, 1, 1, 0, 0, 1, 1]
    proportional = stage("proportional")
    drawn = Counter(member_for(proportional, rows, 2 * s) for s in range(4000))
    assert drawn[0] / 4000 == pytest.approx(0.75, abs=0.03)
    # The two micro-batches of a step are one member's, and a second call draws the same.
    assert all(
        member_for(proportional, rows, 2 * s) == member_for(proportional, rows, 2 * s + 1)
        for s in range(200)
    )
    hot = stage("temperature", sampling_temperature=2.0)
    drawn = Counter(member_for(hot, rows, 2 * s) for s in range(4000))
    assert drawn[0] / 4000 == pytest.approx(math.sqrt(3) / (math.sqrt(3) + 1), abs=0.03)


def test_step_counts_of_the_sampling_rules_agree_with_the_lr_preview(scored_csv):
    from app.model.lr_plan import plan_curve
    from engine.spec.schedule import joint_steps

    for sampling, expected in (("all", 2 * 10 // 2), ("round_robin", 2 * (10 + 10) // 2)):
        text = shared_plan(scored_csv, sampling).replace("max_steps: 4", "epochs: 2")
        plan = load_plan_text(text)
        # 160 rows: 32 test, then 32 of the 128 for evaluation -> 96 train rows, 12 batches.
        assert (
            joint_steps(plan.stages[0], [96, 96], sampling)
            == 2 * (12 if sampling == "all" else 24) // 2
        )
        import yaml

        (curve,) = plan_curve(yaml.safe_load(text)["stages"], scored_csv.parent)
        assert curve.steps == joint_steps(plan.stages[0], [96, 96], sampling)
        assert expected > 0


def problems(text: str) -> list[str]:
    with pytest.raises(PlanInvalid) as caught:
        load_plan_text(text)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_validation_names_every_joint_problem(scored_csv):
    text = f"""
name: bad
stages:
  - name: enc
    kind: pretrain
    model: {{builtin: bert-tiny}}
    data: {{path: {scored_csv}}}
  - name: shared
    kind: joint
    members:
      - {{name: a, model: {{builtin: bert-tiny}}, data: {{path: {scored_csv}, eval_ratio: 0}}}}
      - {{name: a, data: {{path: {scored_csv}}}, metrics: [mae]}}
    regularization: {{early_stopping: {{metric: accuracy/nobody}}}}
    eval: {{every_steps: 5}}
  - name: mutual
    kind: joint
    coupling: mutual
    model: {{from_stage: enc}}
    members:
      - {{name: x, model: {{builtin: bert-tiny}}, data: {{path: {scored_csv}, eval_ratio: 0.2}}}}
      - {{name: y, task: sequence_regression, data: {{path: {scored_csv}, label_column: score, eval_ratio: 0.2}}}}
  - name: later
    kind: train
    model: {{from_stage: shared}}
    data: {{path: {scored_csv}}}
  - name: wrong-member
    kind: train
    model: {{from_stage: shared, member: nobody}}
    data: {{path: {scored_csv}}}
  - name: not-joint
    kind: train
    model: {{from_stage: enc, member: a}}
    data: {{path: {scored_csv}}}
"""
    found = "\n".join(problems(text))
    for expected in (
        "stages[1].model: shared_backbone needs model",
        "stages[1].members[0].model: with shared_backbone the members share",
        "stages[1].members[1].name: 'a' is already the name of members[0]",
        "stages[1].members[1].metrics: mae do not apply to sequence classification",
        "stages[1].members[0].data.eval_ratio: evaluation needs data",
        "stages[1].regularization.early_stopping.metric: watch 'loss'",
        "stages[2].model: with mutual coupling every member has its own model",
        "stages[2].members[1].model: mutual coupling: give this member a model",
        "stages[2].members: mutual members learn from each other's outputs, so they need one task",
        "stages[3].model.member: stage 'shared' trains 2 models; name one with member: a, a",
        "stages[4].model.member: stage 'shared' has no member 'nobody'",
        "stages[5].model.member: stage 'enc' is a pretrain stage with one model",
    ):
        assert expected in found, f"{expected!r} not in\n{found}"


def test_missing_member_files_are_named(tmp_path):
    from engine.spec.checks import check_files

    data = {
        "stages": [
            {
                "name": "j",
                "kind": "joint",
                "members": [
                    {"name": "a", "data": {"path": "gone.csv"}},
                    {"name": "b", "data": {"path": "gone.csv"}, "model": {"path": "no-model"}},
                ],
            },
            {"name": "e", "kind": "ensemble", "members": [{"path": "no-folder"}]},
        ]
    }
    found = {p.path: p.message for p in check_files(data, tmp_path)}
    assert set(found) == {
        "stages[0].members[0].data.path",
        "stages[0].members[1].data.path",
        "stages[0].members[1].model.path",
        "stages[1].members[0].path",
    }
    assert found["stages[0].members[1].model.path"].startswith("model folder not found: no-model")


def test_a_joint_member_teaches_and_joins_an_ensemble_by_its_task(scored_csv):
    text = (
        shared_plan(scored_csv)
        + f"""
  - name: student
    kind: distill
    teacher: {{from_stage: multitask, member: mood}}
    model: {{builtin: bert-tiny}}
    data: {{path: {scored_csv}, max_length: 24}}
  - name: both
    kind: ensemble
    members: [{{from_stage: multitask, member: mood}}, {{from_stage: student}}]
    data: {{path: {scored_csv}, max_length: 24}}
"""
    )
    load_plan_text(text)  # valid: the member's task is sequence classification
    wrong = text.replace(
        "member: mood}, {from_stage: student}", "member: strength}, {from_stage: student}"
    )
    assert any(
        "sequence regression model; an ensemble combines sequence classifiers" in p
        for p in problems(wrong)
    )
