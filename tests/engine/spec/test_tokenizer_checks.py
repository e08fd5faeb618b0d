"""Validate compares tokenizers only where the outputs are tokens: it reads the saved
tokenizers' files (vocabulary content, not size) and names the first differing tokens; a
classifier across tokenizers is valid; what validate cannot read is left to the stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from engine.spec import PlanInvalid, load_plan_text
from engine.spec.vocab_files import folder_vocab, unreadable_reason, vocab_difference
from tests.engine.conftest import WORDS
from tests.engine.tokenizer_folders import byte_bpe, wordpiece


@pytest.fixture(scope="module")
def two_of_a_size(tmp_path_factory) -> tuple[Path, Path]:
    """Two byte-level BPE tokenizers (RoBERTa's kind) of one size, learned from other texts."""
    root = tmp_path_factory.mktemp("vocabularies")
    folders = []
    for name, mood in (("happy", "pos"), ("sad", "neg")):
        texts = [" ".join(WORDS[mood] + WORDS["filler"][i:]) for i in range(10)] * 5
        byte_bpe(texts, 300).save_pretrained(str(root / name))
        folders.append(root / name)
    return folders[0], folders[1]


def plan(teacher: Path, student: Path, task: str, extra: str = "") -> str:
    return f"""
name: v
stages:
  - name: student
    kind: distill
    task: {task}
    teacher: {{path: {teacher}}}
    model: {{path: {student}}}
    data: {{path: moods.csv}}
    max_steps: 2{extra}
"""


def problems(text: str, plan_dir: Path) -> list[str]:
    with pytest.raises(PlanInvalid) as caught:
        load_plan_text(text, plan_dir=plan_dir)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def first_differing(teacher: dict[str, int], student: dict[str, int]) -> tuple[int, str, str]:
    t, s = ({i: tok for tok, i in v.items()} for v in (teacher, student))
    first = min(i for i in set(t) | set(s) if t.get(i) != s.get(i))
    return first, t[first], s[first]


def test_masked_lm_distillation_across_vocabularies_of_one_size_names_the_tokens(
    two_of_a_size, tmp_path
):
    teacher, student = two_of_a_size
    (tmp_path / "moods.csv").write_text("text,label\ngood day,positive\nbad day,negative\n")
    vocabs = [AutoTokenizer.from_pretrained(str(f)).get_vocab() for f in (teacher, student)]
    assert len(vocabs[0]) == len(vocabs[1]) == 300 and vocabs[0] != vocabs[1]
    (found,) = problems(plan(teacher, student, "masked_lm"), tmp_path)
    i, theirs, ours = first_differing(*vocabs)
    assert found.startswith("stages[0].model: the student's vocabulary is not the teacher's")
    assert f"id {i} is {theirs!r} for the teacher and {ours!r} for the student" in found
    assert "300 tokens each" in found and "masked lm student" in found
    # Token tagging and causal LM compare tokens too; a classifier compares labels.
    for task in ("token_classification", "causal_lm"):
        assert any("vocabulary" in p for p in problems(plan(teacher, student, task), tmp_path))
    load_plan_text(plan(teacher, student, "sequence_classification"), plan_dir=tmp_path)
    # One folder for both: one vocabulary.
    load_plan_text(plan(teacher, teacher, "masked_lm"), plan_dir=tmp_path)
    # A classifier's hidden states cannot be compared across tokenizers.
    hidden = plan(teacher, student, "sequence_classification", "\n    hidden_weight: 0.5")
    (found,) = problems(hidden, tmp_path)
    assert found.startswith("stages[0].hidden_weight: the student reads the text with another")


def test_what_validate_cannot_read_is_left_to_the_stage(two_of_a_size, tmp_path, monkeypatch):
    teacher, _ = two_of_a_size
    (tmp_path / "moods.csv").write_text("text,label\ngood day,positive\n")
    piece = tmp_path / "sentencepiece"
    piece.mkdir()
    (piece / "spiece.model").write_bytes(b"\x0a\x00")
    assert folder_vocab(piece) is None
    assert "SentencePiece" in unreadable_reason(piece)
    load_plan_text(plan(teacher, piece, "masked_lm"), plan_dir=tmp_path)
    # A Hub id (downloads on: validate does not refuse it as missing from the cache).
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    hub = plan(teacher, piece, "masked_lm").replace(f"{{path: {piece}}}", "{hub: org/model}")
    load_plan_text(hub, plan_dir=tmp_path)


def test_vocabularies_are_read_as_the_tokenizer_gives_them(two_of_a_size, tmp_path):
    teacher, _ = two_of_a_size
    fast = AutoTokenizer.from_pretrained(str(teacher))
    assert folder_vocab(teacher) == fast.get_vocab()
    texts = ["good day", "bad day"] * 10
    wordpiece(texts, 60).save_pretrained(str(tmp_path / "wp"))
    assert (
        folder_vocab(tmp_path / "wp")
        == AutoTokenizer.from_pretrained(str(tmp_path / "wp")).get_vocab()
    )
    # Files of slow tokenizers: a WordPiece vocab.txt, a BPE vocab.json, added tokens.
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "vocab.txt").write_text("[PAD]\n[UNK]\nday\n")
    (tmp_path / "slow" / "added_tokens.json").write_text(json.dumps({"<new>": 3}))
    assert folder_vocab(tmp_path / "slow") == {"[PAD]": 0, "[UNK]": 1, "day": 2, "<new>": 3}
    (tmp_path / "bpe").mkdir()
    (tmp_path / "bpe" / "vocab.json").write_text(json.dumps({"a": 0, "Ġday": 1}))
    assert folder_vocab(tmp_path / "bpe") == {"a": 0, "Ġday": 1}
    # Content, not size: the same tokens in another order differ.
    swapped = vocab_difference({"a": 1, "b": 0}, {"a": 0, "b": 1}, "the student", "the teacher")
    assert (
        swapped
        == "id 0 is 'a' for the teacher and 'b' for the student (ids 1 differ too; 2 tokens each)"
    )


def test_mutual_token_tagging_needs_one_vocabulary(two_of_a_size, tmp_path):
    teacher, student = two_of_a_size
    (tmp_path / "tags.jsonl").write_text('{"tokens": ["good"], "tags": ["O"]}\n')
    member = "{{name: {}, task: {}, model: {{path: {}}}, data: {{path: tags.jsonl, text_column: tokens, label_column: tags}}}}"
    text = f"""
name: m
stages:
  - name: pair
    kind: joint
    coupling: mutual
    members:
      - {member.format("a", "token_classification", teacher)}
      - {member.format("b", "token_classification", student)}
    max_steps: 2
"""
    (found,) = problems(text, tmp_path)
    assert found.startswith("stages[0].members[1].model: member 'b' reads with another")
    assert "for member 'a' and" in found and "for member 'b'" in found


def test_hub_ids_in_the_local_cache_are_read_as_their_snapshots(
    two_of_a_size, tmp_path, monkeypatch
):
    cache = tmp_path / "hub"
    for name, folder in zip(("happy", "sad"), two_of_a_size, strict=True):
        repo = cache / f"models--org--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("abc123")
        shutil.copytree(folder, repo / "snapshots" / "abc123")
        (repo / "snapshots" / "abc123" / "config.json").write_text('{"model_type": "roberta"}')
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    (tmp_path / "moods.csv").write_text("text,label\ngood day,positive\n")
    text = plan(Path("x"), Path("y"), "masked_lm")
    text = text.replace("{path: x}", "{hub: org/happy}").replace("{path: y}", "{hub: org/sad}")
    (found,) = problems(text, tmp_path)
    assert "vocabulary is not the teacher's: id " in found and "300 tokens each" in found
    load_plan_text(text.replace("org/sad", "org/happy"), plan_dir=tmp_path)
