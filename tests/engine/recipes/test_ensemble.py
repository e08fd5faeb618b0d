"""The `ensemble` stage: combiners against hand computations, members aligned by label
name, scores on the test rows side by side, and an output folder that reloads and gives the
same predictions."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from engine.models.ensemble import Ensemble, EnsembleError, combine, learn_weights
from engine.spec import PlanInvalid, load_plan_text
from engine.train.recipe import EvaluationRecipe, TrainingRecipe

MEMBER = """
  - name: {name}
    kind: train
    seed: {seed}
    model: {{builtin: bert-tiny, vocab_size: 120}}
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0.2}}
    batch_size: 8
    max_steps: {steps}
"""
ENSEMBLE = """
  - name: together
    kind: ensemble
    members: [{{from_stage: a}}, {{from_stage: b}}, {{from_stage: c}}]
    combiner: {combiner}
    data: {{path: sentiment.csv, max_length: 24, eval_ratio: 0.3, test_ratio: 0.3}}
"""
METRICS = """    eval: {metrics: [loss, accuracy, f1, confusion_matrix]}
"""


def plan(combiner: str = "weighted", metrics: bool = True) -> str:
    """Three members and their ensemble; without `metrics` the ensemble lists none (as one
    added from the palette): it records its task's defaults."""
    members = "".join(
        MEMBER.format(name=n, seed=s, steps=k)
        for n, s, k in (("a", 1, 30), ("b", 2, 8), ("c", 3, 2))
    )
    ensemble = ENSEMBLE.format(combiner=combiner) + (METRICS if metrics else "")
    return "name: ens\nstages:" + members + ensemble


def test_vote_is_the_majority_and_a_tie_goes_to_the_higher_summed_probability():
    probs = torch.tensor(
        [
            [[0.6, 0.4], [0.9, 0.1]],  # member 0 votes 0, 0
            [[0.3, 0.7], [0.45, 0.55]],  # member 1 votes 1, 1
            [[0.2, 0.8], [0.8, 0.2]],  # member 2 votes 1, 0
        ]
    )
    out = combine(probs, "vote", None)
    assert out.argmax(-1).tolist() == [1, 0]
    assert out[0].tolist() == pytest.approx([1 / 3, 2 / 3], abs=1e-5)
    tie = torch.tensor([[[0.9, 0.1]], [[0.4, 0.6]]])  # one vote each; label 0 sums 1.3
    assert combine(tie, "vote", None).argmax(-1).tolist() == [0]


def test_average_is_the_weighted_mean_of_probabilities():
    probs = torch.tensor([[[0.6, 0.4]], [[0.2, 0.8]]])
    assert combine(probs, "average", None)[0].tolist() == pytest.approx([0.4, 0.6])
    assert combine(probs, "average", [3, 1])[0].tolist() == pytest.approx([0.5, 0.5])


def test_learned_weights_minimise_log_loss_over_the_simplex():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (200,), generator=gen)
    onehot = torch.nn.functional.one_hot(labels, 3).float()
    good = 0.7 * onehot + 0.1  # a good member, a noisy one, a useless one
    noisy = torch.softmax(2 * onehot + torch.randn(200, 3, generator=gen), -1)
    flat = torch.full((200, 3), 1 / 3)
    probs = torch.stack([good, noisy, flat])
    learned = learn_weights(probs, labels)
    assert sum(learned) == pytest.approx(1.0) and min(learned) >= 0

    def log_loss(w):
        mixed = sum(wk * probs[k][torch.arange(200), labels] for k, wk in enumerate(w))
        return -sum(math.log(v) for v in mixed.tolist()) / 200

    # A grid over the simplex in steps of 0.05 does not beat the learned weights.
    grid = [
        (a / 20, b / 20, 1 - (a + b) / 20)
        for a, b in itertools.product(range(21), repeat=2)
        if a + b <= 20
    ]
    assert log_loss(learned) <= min(log_loss(w) for w in grid) + 1e-6
    assert learned[0] > learned[2]


@pytest.fixture
def members(train_stage_of):
    text = plan()
    return {name: train_stage_of(text, index=i).recipe.save()[0] for i, name in enumerate("abc")}


@pytest.mark.parametrize("combiner", ["vote", "average", "weighted"])
def test_the_stage_scores_members_and_ensemble_on_the_test_rows(
    train_stage_of, members, combiner, capsys
):
    # The vote lists no eval.metrics (issue 27: it scored "accuracy nan, best member nan").
    result = train_stage_of(plan(combiner, metrics=combiner != "vote"), index=3, outputs=members)
    assert result.outcome == "finished"
    recipe = result.recipe
    # An evaluation-only recipe: none of the training loop's members.
    assert isinstance(recipe, EvaluationRecipe) and not isinstance(recipe, TrainingRecipe)
    assert not hasattr(recipe, "steps") and not hasattr(recipe, "draw")
    ensemble = result.series("eval/accuracy")
    assert list(ensemble) == [0] and not math.isnan(ensemble[0])
    (event,) = result.events("ensemble")
    assert event.data["split"] == "test" and event.data["rows"] == 72  # 30 % of 240
    assert set(event.data["members"]) == {"0-a", "1-b", "2-c"}
    for name in event.data["members"]:
        assert 0 in result.series(f"member/{name}/accuracy")
        assert 0 in result.series(f"member/{name}/f1")
    assert event.data["ensemble"]["accuracy"] == pytest.approx(ensemble[0])
    assert "nan" not in event.message and f"accuracy {ensemble[0]:.4g}" in event.message
    if combiner == "weighted":
        weights = event.data["weights"]
        assert sum(weights.values()) == pytest.approx(1.0)
        assert result.series("ensemble/weight/0-a")[0] == pytest.approx(weights["0-a"])
    (confusion,) = [e for e in result.events("eval") if e.data.get("confusion_matrix")]
    assert sum(map(sum, confusion.data["confusion_matrix"])) == 72

    # The output reloads and predicts what the stage combined.
    loaded = Ensemble.load(recipe.save()[0])
    assert loaded.labels == recipe.labels and loaded.combiner == combiner
    texts = ["a great day in the lab", "an awful broken room"]
    probs = loaded.predict_proba(texts)
    assert probs.shape == (2, 2) and torch.allclose(probs.sum(-1), torch.ones(2))
    member_probs = loaded.member_probas(texts)
    assert torch.allclose(probs, combine(member_probs, combiner, recipe.weights), atol=1e-6)

    # `stagelab predict` takes the ensemble's output like any stage output.
    if combiner == "weighted":
        import json

        from engine.cli.main import main

        capsys.readouterr()
        code = main(["predict", str(recipe.save()[0]), "--text", texts[0], "--json"])
        done = capsys.readouterr()
        assert code == 0, done.err
        answer = json.loads(done.out.splitlines()[-1])
        shown = [x["probability"] for x in answer["labels"]]
        assert shown == pytest.approx(probs[0].tolist(), abs=1e-5)
        assert set(answer["members"]) == {"0-a", "1-b", "2-c"}


def test_a_member_with_another_label_set_is_refused(train_stage_of, members, data_dir):
    (data_dir / "three.csv").write_text(
        "text,label\n" + "".join(f"row {i},{['x', 'y', 'z'][i % 3]}\n" for i in range(30))
    )
    other = plan().replace(
        "path: sentiment.csv, max_length: 24, eval_ratio: 0.2}\n    batch_size: 8\n    max_steps: 2",
        "path: three.csv, max_length: 24, eval_ratio: 0.2}\n    batch_size: 8\n    max_steps: 2",
    )
    assert "three.csv" in other
    try:
        load_plan_text(other, plan_dir=data_dir)
    except PlanInvalid as exc:
        found = [str(p) for p in exc.problems]
    else:
        found = []
    assert any("stages[3].members[2]" in p and "label set" in p for p in found), found
    wrong = dict(members, c=train_stage_of(other, index=2).recipe.save()[0])
    with pytest.raises(EnsembleError, match="member '2-c'.*predicts x, y, z"):
        train_stage_of(plan(), index=3, outputs=wrong)


def test_validation_of_combiners_and_their_rows():
    def problems(text):
        try:
            load_plan_text(text)
        except PlanInvalid as exc:
            return [str(p) for p in exc.problems]
        return []

    assert problems(plan()) == []
    no_test = plan().replace(", test_ratio: 0.3", "")
    assert any("stages[3].data.test_ratio" in p for p in problems(no_test))
    weights = plan("vote").replace("combiner: vote", "combiner: vote\n    weights: [1, 1, 1]")
    assert any("stages[3].weights" in p and "average" in p for p in problems(weights))
    count = plan("average").replace("combiner: average", "combiner: average\n    weights: [1, 2]")
    assert any("stages[3].weights" in p and "one per member" in p for p in problems(count))
    pretrain = (
        plan()
        .replace("kind: train\n    seed: 3", "kind: pretrain\n    seed: 3")
        .replace(
            "path: sentiment.csv, max_length: 24, eval_ratio: 0.2}\n    batch_size: 8\n    max_steps: 2",
            "path: corpus.txt, max_length: 24, eval_ratio: 0.2}\n    batch_size: 8\n    max_steps: 2",
        )
    )
    assert any(
        "stages[3].members[2]" in p and "sequence classifiers" in p for p in problems(pretrain)
    )


def test_the_report_line_says_in_words_what_was_not_evaluated_or_recorded():
    from engine.recipes.ensemble import report_line

    both = {"0-a": {"loss": 0.5, "accuracy": 0.8}, "1-b": {"loss": 0.4, "accuracy": 0.75}}
    line = report_line({"loss": 0.3, "accuracy": 0.85}, both)
    assert line == "accuracy 0.85, best member 0.8 (0-a 0.8, 1-b 0.75)"
    # Accuracy not evaluated: the line scores loss (the lowest member is the best) and
    # says that accuracy was not evaluated, instead of "accuracy nan".
    losses = {name: {"loss": v["loss"]} for name, v in both.items()}
    line = report_line({"loss": 0.3}, losses)
    assert line.startswith("loss 0.3, best member 0.4 (0-a 0.5, 1-b 0.4)")
    assert "accuracy was not evaluated" in line and "nan" not in line
    # A member without the metric is named as such, never given a number.
    line = report_line({"accuracy": 0.9}, {"0-a": {"accuracy": 0.8}, "1-b": {}})
    assert line == "accuracy 0.9, best member 0.8 (0-a 0.8, 1-b not recorded)"
    assert "no metric was evaluated" in report_line({}, {"0-a": {}})
