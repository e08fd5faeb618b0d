"""Sample outputs (issue 31, item 3): at every evaluation a `samples` event holds the
model's answers on the plan's fixed inputs, for each way a model answers (a label and its
probability, the fill of masks, a greedy generation), on built-in models and on folders of
real families (tests/engine/models/families.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

PLAN = """
name: t
stages:
  - name: s
    kind: {kind}
    {task}
    model: {model}
    data: {data}
    batch_size: 8
    max_steps: 2
    eval: {{every_steps: 1, max_batches: 1, samples: {samples}{extra}}}
"""

BERT = "{builtin: bert-tiny, vocab_size: 200}"
GPT = "{builtin: gpt2-tiny, vocab_size: 200}"
SENTIMENT = "{path: sentiment.csv, max_length: 24, eval_ratio: 0.25}"
CORPUS = "{path: corpus.txt, format: text, max_length: 24, eval_ratio: 0.2}"
INSTRUCTIONS = (
    "{path: instructions.jsonl, prompt_column: prompt, response_column: response, "
    "max_length: 24, eval_ratio: 0.25}"
)
ENTITIES = (
    "{path: entities.jsonl, text_column: tokens, label_column: tags, max_length: 16, "
    "eval_ratio: 0.25}"
)


@pytest.fixture(scope="module")
def folders(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A RoBERTa masked-LM folder (byte-level BPE, `<mask>`) and a Llama causal-LM folder
    (SentencePiece-style, no padding token), as checkpoints come."""
    from tests.engine.models.families import corpus, family_folder

    root, texts = tmp_path_factory.mktemp("sample-families"), corpus(data_dir)
    return {family: family_folder(family, root, texts) for family in ("roberta", "llama")}


def _samples(result) -> list[dict]:
    assert result.outcome == "finished"
    events = [e.data for e in result.events("samples")]
    # One event per evaluation: steps 1 and 2 (every_steps 1), never the test evaluation.
    assert [(d["step"], d["stage"]) for d in events] == [(1, "s"), (2, "s")]
    return events


def _same_inputs(events: list[dict]) -> list[dict]:
    first, last = events
    assert [r["input"] for r in first["rows"]] == [r["input"] for r in last["rows"]]
    assert [r["row"] for r in first["rows"]] == list(range(len(first["rows"])))
    return last["rows"]


def _batched_as_alone(result) -> None:
    """The prompts are generated as one left-padded batch: each row's tokens and their
    probabilities are the ones it gets alone (positions counted from its own first token;
    GPT-2's absolute positions would show any shift, rotary ones would not)."""
    import torch

    from engine.train.samples import _Answering

    [each] = result.recipe.eval_sets("eval")
    answering = _Answering(result.ctx, result.recipe, each.samples)
    answering.stops = set()  # the whole length, to compare every position
    rows = result.recipe.eval_rows
    prompts = [list(r["input_ids"][:n]) for r, n in zip(rows, (3, 9, 5), strict=False)]
    result.recipe.model.eval()
    with torch.no_grad():
        together = answering._greedy(prompts, 6)
        alone = [answering._greedy([p], 6)[0] for p in prompts]
    assert [t for t, _ in together] == [t for t, _ in alone]
    for (_, p), (_, q) in zip(together, alone, strict=True):
        assert p == pytest.approx(q, abs=1e-4)


def test_a_classifier_gives_the_label_its_probability_and_the_gold_one(train_stage_of):
    plan = PLAN.format(kind="train", task="", model=BERT, data=SENTIMENT, samples=3, extra="")
    result = train_stage_of(plan)
    events = _samples(result)
    assert {d["task"] for d in events} == {"classify"}
    rows = _same_inputs(events)
    tokenizer, eval_rows = result.recipe.tokenizer, result.recipe.eval_rows
    labels = ["negative", "positive"]
    for i, row in enumerate(rows):
        # The first N eval rows, in their order, with their gold labels.
        assert row["input"] == tokenizer.decode(eval_rows[i]["input_ids"], skip_special_tokens=True)
        assert row["target"] == labels[eval_rows[i]["labels"]]
        assert row["output"] in labels and 0.5 <= row["score"] <= 1


def test_a_token_classifier_tags_each_word_of_a_text(train_stage_of):
    task = "task: token_classification"
    texts = "[today anna went to rome, bob]"
    plan = PLAN.format(kind="train", task=task, model=BERT, data=ENTITIES, samples=texts, extra="")
    rows = _same_inputs(_samples(train_stage_of(plan)))
    assert [r["input"] for r in rows] == ["today anna went to rome", "bob"]
    assert [len(r["output"].split()) for r in rows] == [5, 1]
    assert all(r["target"] is None and 0 < r["score"] <= 1 for r in rows)


def test_a_masked_lm_fills_its_masks(train_stage_of, folders):
    model = f"{{path: {folders['roberta']}}}"
    texts = "['the <mask> day', 'good trip today']"
    plan = PLAN.format(kind="pretrain", task="", model=model, data=CORPUS, samples=texts, extra="")
    result = train_stage_of(plan)
    events = _samples(result)
    assert {d["task"] for d in events} == {"fill"}
    given, masked = _same_inputs(events)
    # A text holding the mask token is filled there (nothing to compare with) …
    assert given["input"] == "the<mask> day" or given["input"].count("<mask>") == 1
    assert given["target"] is None and len(given["output"].split(" · ")) == 1
    # … one without is masked as the evaluation masks, and the masked tokens are the target.
    assert "<mask>" in masked["input"] and masked["target"]
    assert len(masked["output"].split(" · ")) == len(masked["target"].split(" · "))
    assert 0 < masked["score"] <= 1


def test_sft_generates_after_the_prompt_within_the_length(train_stage_of):
    # With LoRA, as the shipped llm plan fine-tunes: the adapted model answers.
    plan = PLAN.format(
        kind="train",
        task="task: causal_lm_sft\n    adapter: {kind: lora, rank: 4}",
        model=GPT,
        data=INSTRUCTIONS,
        samples=2,
        extra=", samples_max_new_tokens: 3",
    )
    result = train_stage_of(plan)
    events = _samples(result)
    assert {d["task"] for d in events} == {"generate"}
    rows = _same_inputs(events)
    tokenizer = result.recipe.tokenizer
    for row in rows:
        # The prompt only; the answer the row holds is the target.
        assert row["input"].startswith("mood of ") and row["input"].endswith("?")
        assert row["target"] in ("positive", "negative")
        assert len(tokenizer(row["output"], add_special_tokens=False)["input_ids"]) <= 3
    _batched_as_alone(result)


def test_a_causal_lm_of_a_real_family_continues_a_text(train_stage_of, folders):
    model = f"{{path: {folders['llama']}}}"
    plan = PLAN.format(
        kind="pretrain",
        task="objective: causal_lm",
        model=model,
        data=CORPUS,
        samples="[the good day, 'and then']",
        extra=", samples_max_new_tokens: 4",
    )
    result = train_stage_of(plan)
    rows = _same_inputs(_samples(result))
    assert [r["input"] for r in rows] == ["the good day", "and then"]
    assert all(r["target"] is None and isinstance(r["output"], str) for r in rows)
    _batched_as_alone(result)


def test_preference_generates_from_the_prompt_with_the_chosen_answer_as_target(
    train_stage_of, prefs
):
    plan = PLAN.format(
        kind="preference",
        task="",
        model=GPT,
        data="{path: prefs.jsonl, max_length: 64, eval_ratio: 0.25}",
        samples=1,
        extra="",
    )
    [row] = _same_inputs(_samples(train_stage_of(plan)))
    assert row["input"].startswith("the mood of ") and row["target"] in ("positive", "negative")
