"""The size of a built-in model's tokenizer, known before training with the standard
library (engine.spec.vocabulary): equal to what the engine's tokenizer trainer learns on
the demo data, and a built-in distill student's own vocab_size is reported as unused."""

from __future__ import annotations

import csv

import pytest

from engine.resources import resources_dir
from engine.spec import plan_problems
from engine.spec.vocabulary import learned_vocab_size

DATA = resources_dir() / "data"


def corpus() -> list[str]:
    return (DATA / "corpus.txt").read_text(encoding="utf-8").splitlines()


def reviews() -> list[str]:
    with open(DATA / "reviews.csv", encoding="utf-8", newline="") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


@pytest.mark.parametrize(
    ("arch", "texts", "vocab_size"),
    [
        ("bert", corpus, 2000),  # a small corpus: fewer tokens than asked for (842)
        ("bert", reviews, 300),  # a budget the corpus fills
        ("gpt2", reviews, 4000),
        ("llama", corpus, 1500),
    ],
)
def test_the_count_equals_the_engines_tokenizer(arch, texts, vocab_size):
    from engine.data.tokenizer import train_tokenizer

    rows = texts()
    assert learned_vocab_size(arch, rows, vocab_size) == len(
        train_tokenizer(arch, rows, vocab_size)
    )


def test_accents_punctuation_and_bytes_are_split_as_the_tokenizers_do():
    from engine.data.tokenizer import train_tokenizer

    rows = ["Héllo, WÖRLD!! naïve café's", "tab\there  two  spaces\n\nline", "a_b __c 12 345"]
    for arch in ("bert", "gpt2"):
        assert learned_vocab_size(arch, rows, 1000) == len(train_tokenizer(arch, rows, 1000))


def test_a_builtin_students_own_vocab_size_is_reported_as_unused():
    stages = [
        {"name": "t", "kind": "train", "model": {"hub": "org/x"}, "data": {"path": "a.csv"}},
        {
            "name": "d",
            "kind": "distill",
            "teacher": {"from_stage": "t"},
            "model": {"builtin": "bert-tiny", "vocab_size": 8000},
            "data": {"path": "a.csv"},
        },
    ]
    plan = {"version": 1, "name": "p", "stages": stages}
    found = [p for p in plan_problems(plan) if p.path == "stages[1].model.vocab_size"]
    assert found and "takes the teacher's tokenizer" in found[0].message
    assert "remove vocab_size" in found[0].message
    del stages[1]["model"]["vocab_size"]
    assert not plan_problems(plan)
