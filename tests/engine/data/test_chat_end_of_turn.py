"""The token a chat template ends the assistant's turn with (issue 29, item 2): found from
the template's rendering of one exchange, where generation stops besides eos."""

from __future__ import annotations

import pytest

from engine.data.chat import end_of_turn, stop_ids
from tests.engine.data.test_tokenizers_as_they_come import CHATML, byte_bpe

LLAMA2 = (
    "{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %} {{ m['content'] }} {{ eos_token }}{% endif %}{% endfor %}"
)
WORDS = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\nEND\n{% endfor %}"
SYSTEM_FIRST = (
    "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system turn first') }}"
    "{% endif %}{% for m in messages %}{{ m['content'] }}<|im_end|>{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return byte_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])


@pytest.mark.parametrize(
    ("template", "token"),
    [
        (CHATML, "<|im_end|>"),  # an added token that is not eos
        (None, "<|endoftext|>"),  # Stagelab's plain template ends answers with eos
        (LLAMA2, "<|endoftext|>"),  # a space before the marker
        (WORDS, None),  # the turn ends in words: nothing to stop at
        (SYSTEM_FIRST, None),  # a template that refuses the exchange
    ],
    ids=["chatml", "plain", "llama2", "words", "refuses"],
)
def test_the_end_of_turn_is_the_token_the_template_writes_after_the_answer(
    tokenizer, template, token
):
    tokenizer.chat_template = template
    assert end_of_turn(tokenizer) == token


def test_generation_stops_at_eos_and_the_end_of_turn(tokenizer):
    eos, im_end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    assert stop_ids(tokenizer, "<|im_end|>") == [eos, im_end]
    assert stop_ids(tokenizer, "<|endoftext|>") == stop_ids(tokenizer, None) == [eos]
    assert stop_ids(tokenizer, "<|not-a-token|>") == [eos]
