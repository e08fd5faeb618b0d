"""Joint members' tokenizers as they come (issue 29, item 2): a member whose tokenizer has
no padding token pads with its end-of-text token, on the right (joint tasks are read, never
generated), and the stage records it as a `tokenizer` event naming the member(s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.data.test_tokenizers_as_they_come import byte_bpe, save_decoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def padless(tmp_path_factory) -> dict[str, Path]:
    """Tiny OPT and Phi folders whose byte-level BPE tokenizer has eos but no padding."""
    root = tmp_path_factory.mktemp("padless")
    return {f: save_decoder(root / f, f, byte_bpe(["<|endoftext|>"])) for f in ("opt", "phi")}


def joint_plan(body: str) -> str:
    return f"""
name: j
stages:
  - name: pair
    kind: joint
{body}
    batch_size: 8
    max_steps: 1
"""


def data(csv_path: Path, label: str = "label") -> str:
    return f"{{path: {csv_path}, label_column: {label}, max_length: 24, eval_ratio: 0.25}}"


def notes(result) -> list[tuple[str, list[str]]]:
    return [(e.message, e.data["members"]) for e in result.events("tokenizer")]


def test_mutual_members_without_a_padding_token_say_so(train_stage_of, padless, scored_csv):
    body = f"""    coupling: mutual
    members:
      - name: opt
        model: {{path: {padless["opt"]}}}
        data: {data(scored_csv)}
      - name: tiny
        model: {{builtin: bert-tiny}}
        data: {data(scored_csv)}
      - name: phi
        model: {{path: {padless["phi"]}}}
        data: {data(scored_csv)}"""
    result = train_stage_of(joint_plan(body))
    assert result.outcome == "finished"
    # The built-in member reads with the first loaded member's tokenizer: one note each for
    # the two tokenizers loaded, naming whose they are.
    said = notes(result)
    assert [members for _, members in said] == [["opt"], ["phi"]]
    for (message, _), name in zip(said, ("opt", "phi"), strict=True):
        assert message.startswith(f"member '{name}': the tokenizer has no padding token")
    for member in result.recipe.members:
        assert member.tokenizer.pad_token == "<|endoftext|>"
        assert member.tokenizer.padding_side == "right"


def test_a_shared_encoder_without_a_padding_token_names_its_members(
    train_stage_of, padless, scored_csv
):
    body = f"""    model: {{path: {padless["opt"]}}}
    members:
      - name: mood
        data: {data(scored_csv)}
      - name: strength
        task: sequence_regression
        data: {data(scored_csv, "score")}"""
    result = train_stage_of(joint_plan(body))
    assert result.outcome == "finished"
    [(message, members)] = notes(result)
    assert members == ["mood", "strength"]
    assert message.startswith("members 'mood', 'strength' (one encoder): the tokenizer has no")
