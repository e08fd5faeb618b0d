"""Built-in decoders beyond GPT-2 (Llama, Qwen2, Mistral, GPT-NeoX styles): causal-LM
pretraining and supervised fine-tuning with a tokenizer learned on the stage's data, the
outputs loaded by plain transformers, masked-LM refused; and chat rows for SFT, with the
loss on the assistant's turns only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

FAMILIES = ["llama", "qwen2", "mistral", "gpt_neox"]

CHAIN = """
name: t
stages:
  - name: lm
    kind: pretrain
    objective: causal_lm
    model: {{builtin: {family}-tiny, vocab_size: 300}}
    data: {{path: corpus.txt, max_length: 24, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: 30
    optimizer: {{lr: 0.003}}
    log_every_steps: 5
  - name: sft
    kind: train
    task: causal_lm_sft
    model: {{from_stage: lm}}
    data: {data}
    batch_size: 16
    max_steps: 30
    optimizer: {{lr: 0.003}}
    log_every_steps: 5
"""

INSTRUCTIONS = (
    "{path: instructions.jsonl, prompt_column: prompt, response_column: response, "
    "max_length: 24, eval_ratio: 0.2}"
)
CHATS = "{path: chats.jsonl, messages_column: messages, max_length: 128, eval_ratio: 0.2}"


@pytest.fixture(scope="module")
def chats(data_dir: Path) -> Path:
    """Chat rows: a system turn, a question and its answer, sometimes a second exchange."""
    path = data_dir / "chats.jsonl"
    words = {"good": "positive", "awful": "negative", "great": "positive", "sad": "negative"}
    with open(path, "w") as fh:
        for i in range(160):
            word, answer = list(words.items())[i % 4]
            messages = [
                {"role": "system", "content": "answer with one word"},
                {"role": "user", "content": f"mood of {word}?"},
                {"role": "assistant", "content": answer},
            ]
            if i % 3 == 0:
                messages += [
                    {"role": "user", "content": "and again?"},
                    {"role": "assistant", "content": f"still {answer}"},
                ]
            fh.write(json.dumps({"messages": messages}) + "\n")
    return path


def falling(losses: dict[int, float]) -> tuple[float, float]:
    values = [losses[s] for s in sorted(losses)]
    assert values and all(torch.isfinite(torch.tensor(values)))
    return sum(values[:5]) / 5, sum(values[-5:]) / 5


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_each_decoder_family_pretrains_and_fine_tunes(train_stage_of, family):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plan = CHAIN.format(family=family, data=INSTRUCTIONS)
    first = train_stage_of(plan)
    assert first.recipe.model.config.model_type == family
    start, end = falling(first.series("train/loss"))
    assert end < start * 0.8, (start, end)
    lm_out = first.recipe.save()[0]
    second = train_stage_of(plan, 1, {"lm": lm_out})
    start, end = falling(second.series("train/loss"))
    assert end < start * 0.8, (start, end)
    [out] = second.recipe.save()
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == family
    enc = tokenizer(["mood of good?"], return_tensors="pt")
    with torch.no_grad():
        second.recipe.model.eval()
        torch.testing.assert_close(model(**enc).logits, second.recipe.model(**enc).logits)


def test_masked_lm_is_refused_on_decoder_families():
    from engine.spec import load_plan_text
    from engine.spec.problems import PlanInvalid

    for family in FAMILIES:
        plan = CHAIN.format(family=family, data=INSTRUCTIONS).replace(
            "objective: causal_lm", "objective: masked_lm"
        )
        with pytest.raises(PlanInvalid) as refused:
            load_plan_text(plan)
        assert [str(p) for p in refused.value.problems] == [
            f"stages[0].objective: a {family} model has no mask token for masked-LM; use "
            "causal_lm or a bert model"
        ]


def chat_tokenizer():
    from engine.data.tokenizer import train_tokenizer

    texts = ["answer with one word", "mood of good?", "positive negative still and again?"]
    return train_tokenizer("llama", texts * 5, 400)


CONVERSATION = [
    {"role": "system", "content": "answer with one word"},
    {"role": "user", "content": "mood of good?"},
    {"role": "assistant", "content": "positive"},
    {"role": "user", "content": "and again?"},
    {"role": "assistant", "content": "still positive"},
]


def learned_and_ignored(tokenizer, ids: list[int], labels: list[int]) -> tuple[str, str]:
    assert len(ids) == len(labels)
    assert all(label in (-100, token) for token, label in zip(ids, labels, strict=True))
    learned = [t for t, label in zip(ids, labels, strict=True) if label != -100]
    ignored = [t for t, label in zip(ids, labels, strict=True) if label == -100]
    return tokenizer.decode(learned), tokenizer.decode(ignored)


def test_chat_rows_are_learned_on_the_assistant_turns_only():
    from engine.data.chat import encode_chat

    tokenizer = chat_tokenizer()
    ids, labels = encode_chat(CONVERSATION, tokenizer, 512, -100)
    learned, ignored = learned_and_ignored(tokenizer, ids, labels)
    eos = tokenizer.eos_token
    assert learned == f"positive{eos}\nstill positive{eos}\n"
    assert ignored == (
        "<|system|>\nanswer with one word\n<|user|>\nmood of good?\n<|assistant|>\n"
        "<|user|>\nand again?\n<|assistant|>\n"
    )
    # The ids are those of the whole rendered conversation, which inference renders alike.
    from engine.data.chat import PLAIN_CHAT_TEMPLATE

    text = tokenizer.apply_chat_template(
        CONVERSATION, chat_template=PLAIN_CHAT_TEMPLATE, tokenize=False
    )
    assert tokenizer.decode(ids) == text
    short_ids, short_labels = encode_chat(CONVERSATION, tokenizer, 7, -100)
    assert short_ids == ids[:7] and short_labels == labels[:7]


def test_a_tokenizers_own_chat_template_is_used_and_masked_the_same_way():
    from engine.data.chat import encode_chat

    tokenizer = chat_tokenizer()
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}\n"
        "{% elif m['role'] == 'assistant' %}A: {{ m['content'] }}{{ eos_token }}\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}A: {% endif %}"
    )
    ids, labels = encode_chat(CONVERSATION, tokenizer, 512, -100)
    learned, ignored = learned_and_ignored(tokenizer, ids, labels)
    eos = tokenizer.eos_token
    assert learned == f"positive{eos}\nstill positive{eos}\n"
    assert ignored == "Q: mood of good?\nA: Q: and again?\nA: "


@pytest.mark.slow
def test_sft_on_chat_rows_learns_the_answers_and_keeps_the_template(
    train_stage_of, chats, tmp_path
):
    from transformers import AutoTokenizer

    plan = CHAIN.format(family="qwen2", data=CHATS)
    lm_out = train_stage_of(plan).recipe.save()[0]
    result = train_stage_of(plan, 1, {"lm": lm_out})
    start, end = falling(result.series("train/loss"))
    assert end < start * 0.7, (start, end)
    [event] = [e for e in result.events("data") if "chat" in e.message]
    assert "Stagelab's plain chat template" in event.message
    rows = result.recipe.train_rows
    assert all(any(label != -100 for label in row["labels"]) for row in rows)
    [out] = result.recipe.save()
    saved = AutoTokenizer.from_pretrained(out)
    prompt = saved.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>\nmood of good?\n<|assistant|>\n")
