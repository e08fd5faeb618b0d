"""Models of other families, each reading the text with its own tokenizer, where the outputs
are labels or values (tiny models, CPU): a RoBERTa teacher (byte-level BPE) distilled into a
DistilBERT student (WordPiece), the loss against a hand computation with each model on its
own unpadded encoding; a mutual stage of a RoBERTa and an ELECTRA member (classification
and regression); and the run-time refusal where the outputs are tokens."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer

from engine.data.encode import pad_batch
from engine.recipes.distill import DistillError, DistillRecipe
from engine.spec import load_plan_text
from engine.train.batches import Streams
from engine.train.recipe import Targets

pytestmark = pytest.mark.slow


def distill_plan(folders, task: str = "sequence_classification") -> str:
    return f"""
name: t
stages:
  - name: teacher
    kind: train
    model: {{path: {folders["roberta"]}}}
    data: {{path: sentiment.csv, max_length: 48, eval_ratio: 0.25}}
    batch_size: 8
    max_steps: 4
  - name: student
    kind: distill
    task: {task}
    teacher: {{from_stage: teacher}}
    model: {{path: {folders["distilbert"]}}}
    data: {{path: sentiment.csv, max_length: 48, eval_ratio: 0.25}}
    alpha: 0.3
    temperature: 2.0
    batch_size: 8
    max_steps: 3
    eval: {{metrics: [loss, accuracy]}}
"""


def kl_sum(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    """Σ over rows of T²·KL(softmax(teacher/T) ‖ softmax(student/T)), in Python floats."""
    total = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        zs = sum(math.exp(v / t) for v in s_row)
        zt = sum(math.exp(v / t) for v in t_row)
        for s_v, t_v in zip(s_row, t_row, strict=True):
            p = math.exp(t_v / t) / zt
            total += p * (math.log(p) - math.log(math.exp(s_v / t) / zs))
    return t * t * total


def alone(model, ids: list[int]) -> list[float]:
    """A model's logits for one row's own ids, unpadded."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].tolist()


def words(tokenizer, ids: list[int]) -> list[str]:
    return tokenizer.decode(ids, skip_special_tokens=True).lower().split()


def test_a_roberta_teacher_distils_into_a_distilbert_student(train_stage_of, family_folders):
    plan = distill_plan(family_folders)
    load_plan_text(plan)  # valid: classifiers compare label distributions, not token ids
    seen = {}

    def before(recipe):
        assert recipe.apart
        student_tok = recipe.tokenizer
        teacher_tok = AutoTokenizer.from_pretrained(str(family_folders["roberta"]))
        rows = recipe.train_rows[:8]
        # Both encodings of a row are the same example (the same words).
        for row in rows:
            assert row["input_ids"] != row["teacher_input_ids"]
            assert words(student_tok, row["input_ids"]) == words(
                teacher_tok, row["teacher_input_ids"]
            )
        recipe.model.eval()
        batch = recipe.prepare(pad_batch(rows, recipe.pad_id), seed=0, micro_step=0, train=True)
        # The teacher's padding is its own pad id, not the student's.
        inputs = recipe._teacher_inputs(batch)
        assert recipe.teacher_pad_id != recipe.pad_id
        assert (inputs["input_ids"][inputs["attention_mask"] == 0] == recipe.teacher_pad_id).all()
        targets = recipe.count_targets(batch) + 3  # as if other micro-batches shared the step
        out = recipe.loss("train", batch, Targets({"train": targets}))
        seen["ours"] = (out.loss.item(), out.parts["loss_task"].item(), out.parts["loss_kd"].item())
        # By hand: each model on its own encoding of each row, alone and unpadded.
        s = [alone(recipe.model, r["input_ids"]) for r in rows]
        t = [alone(recipe.teacher, r["teacher_input_ids"]) for r in rows]
        ce = sum(
            math.log(sum(math.exp(v) for v in row)) - row[r["labels"]]
            for row, r in zip(s, rows, strict=True)
        )
        task, kd = ce / targets, kl_sum(s, t, 2.0) / targets
        seen["hand"] = (0.3 * task + 0.7 * kd, task, kd)

    teacher = train_stage_of(plan).recipe.save()[0]
    result = train_stage_of(plan, index=1, outputs={"teacher": teacher}, before=before)
    assert result.outcome == "finished"
    for ours, hand in zip(seen["ours"], seen["hand"], strict=True):
        assert ours == pytest.approx(hand, rel=1e-4, abs=1e-6)  # fp32, padded, against alone
    assert sorted(result.series("train/loss_kd")) == [1, 2, 3]
    # The teacher scored on its own encoding of the eval rows; the student beside it.
    assert list(result.series("teacher/accuracy")) == [0]
    assert 3 in result.series("eval/accuracy")
    # The student's output keeps its own tokenizer and the teacher's labels.
    out = result.recipe.save()[0]
    saved = AutoTokenizer.from_pretrained(str(out)).get_vocab()
    assert saved == AutoTokenizer.from_pretrained(str(family_folders["distilbert"])).get_vocab()
    assert result.recipe.model.config.id2label == result.recipe.teacher.config.id2label


def test_unlabelled_text_distils_across_tokenizers(train_stage_of, family_folders, data_dir):
    """alpha 0: the student learns the teacher's choices, which the teacher makes on its
    own encoding (training and evaluation)."""
    (data_dir / "raw.csv").write_text(
        "text\n" + "\n".join((data_dir / "corpus.txt").read_text().splitlines())
    )
    plan = distill_plan(family_folders)
    teacher = train_stage_of(plan.replace("max_steps: 4", "max_steps: 1")).recipe.save()[0]
    # The student's data (the plan's last file) is text alone.
    head, _, tail = plan.replace("alpha: 0.3", "alpha: 0").rpartition("sentiment.csv")
    unlabelled = head + "raw.csv" + tail
    result = train_stage_of(unlabelled, index=1, outputs={"teacher": teacher})
    assert result.outcome == "finished" and result.recipe.apart
    assert sorted(result.series("train/loss_kd")) == [1, 2, 3]
    assert 0 <= result.series("eval/accuracy")[3] <= 1


def test_token_outputs_across_vocabularies_are_refused_at_the_start(family_folders):
    """Where validate cannot read a tokenizer (a Hub id, a SentencePiece model), the stage
    refuses at its start, naming the first differing tokens."""
    plan = load_plan_text(distill_plan(family_folders, task="sequence_classification"))
    stage = plan.stages[1].model_copy(update={"task": "masked_lm"})
    recipe = DistillRecipe(SimpleNamespace(stage=stage, index=1))
    recipe.tokenizer = AutoTokenizer.from_pretrained(str(family_folders["distilbert"]))
    teacher = AutoTokenizer.from_pretrained(str(family_folders["roberta"]))
    with pytest.raises(DistillError) as caught:
        recipe._check_tokenizers(teacher)
    message = str(caught.value)
    assert "id 0 is '<s>' for the teacher and '[PAD]' for the student" in message, message
    assert f"{len(teacher)} tokens against {len(recipe.tokenizer)}" in message
    assert "masked lm student" in message
    # A classifier across the same two tokenizers reads apart, and hidden states cannot meet.
    recipe = DistillRecipe(SimpleNamespace(stage=plan.stages[1], index=1))
    recipe.tokenizer = AutoTokenizer.from_pretrained(str(family_folders["distilbert"]))
    recipe._check_tokenizers(teacher)
    assert recipe.apart
    hidden = plan.stages[1].model_copy(update={"hidden_weight": 0.5})
    recipe = DistillRecipe(SimpleNamespace(stage=hidden, index=1))
    recipe.tokenizer = AutoTokenizer.from_pretrained(str(family_folders["distilbert"]))
    with pytest.raises(DistillError, match="hidden_weight"):
        recipe._check_tokenizers(teacher)


def test_a_teacher_without_a_padding_id_pads_with_its_end_of_text(family_folders):
    """A decoder classifier's config may name no padding id (its head finds each row's
    last real token by it): the teacher's own padding then carries its end-of-text id,
    which its config is given."""
    plan = load_plan_text(distill_plan(family_folders))
    recipe = DistillRecipe(SimpleNamespace(stage=plan.stages[1], index=1))
    recipe.teacher = SimpleNamespace(config=SimpleNamespace(pad_token_id=None))
    tokenizer = SimpleNamespace(pad_token_id=None, eos_token_id=7)
    assert recipe._teacher_pad(tokenizer) == 7 and recipe.teacher.config.pad_token_id == 7
    recipe.teacher.config.pad_token_id = 3  # the config's own id comes first
    assert recipe._teacher_pad(SimpleNamespace(pad_token_id=1, eos_token_id=2)) == 3


def mutual_plan(folders, csv, task: str) -> str:
    label = "score" if task == "sequence_regression" else "label"
    member = "model: {{path: {}}}, task: {}, data: {{path: {}, label_column: {}, max_length: 24, eval_ratio: 0.25}}"
    return f"""
name: m
stages:
  - name: pair
    kind: joint
    coupling: mutual
    members:
      - {{name: rob, {member.format(folders["roberta"], task, csv, label)}}}
      - {{name: ele, {member.format(folders["electra"], task, csv, label)}}}
    mutual_weight: 0.7
    mutual_temperature: 2.0
    batch_size: 8
    max_steps: 2
"""


@pytest.mark.parametrize("task", ["sequence_classification", "sequence_regression"])
def test_mutual_members_of_two_families_read_with_their_own_tokenizers(
    train_stage_of, family_folders, scored_csv, task
):
    seen = {}

    def before(recipe):
        rob, ele = recipe.members
        assert (rob.prefix, ele.prefix) == ("", "tok1_")
        for m in recipe.members:
            m.model.eval()
        streams = Streams.open(
            recipe.sources(),
            batch_size=8,
            seed=recipe.ctx.stage.seed,
            pad_id=recipe.pad_id,
            positions={},
        )
        drawn = recipe.draw(streams, 0)
        out = recipe.loss(drawn.source, drawn.batch, Targets({drawn.source: 8}))
        seen["ours"] = out.parts["loss_mutual"].item()
        # By hand: each member on its own unpadded encoding of each row of the batch.
        rows = recipe.sources()[drawn.source]
        order = streams[drawn.source]._order[:8]
        a = [alone(rob.model, rows[i]["input_ids"]) for i in order]
        b = [alone(ele.model, rows[i]["tok1_input_ids"]) for i in order]
        if task == "sequence_regression":
            pairs = 2 * sum((x[0] - y[0]) ** 2 for x, y in zip(a, b, strict=True))
        else:
            pairs = kl_sum(a, b, 2.0) + kl_sum(b, a, 2.0)
        # Mean over the 2 ordered pairs of the mean over rows, over 2 micro-batches a step.
        seen["hand"] = pairs / 8 / 2 / 2

    result = train_stage_of(mutual_plan(family_folders, scored_csv, task), before=before)
    assert result.outcome == "finished"
    assert seen["ours"] == pytest.approx(seen["hand"], rel=1e-4, abs=1e-6)
    assert sorted(result.series("train/loss_mutual")) == [1, 2]
    # Each member's folder keeps its own tokenizer.
    _, *folders = result.recipe.save()
    for folder, family in zip(folders, ("roberta", "electra"), strict=True):
        own = AutoTokenizer.from_pretrained(str(family_folders[family])).get_vocab()
        assert AutoTokenizer.from_pretrained(str(folder)).get_vocab() == own
