"""Tokenizers as they come (issue 29, item 2): decoders whose byte-level BPE tokenizer has
no padding token (OPT's and Phi's shapes, saved as folders) pretrain and classify; a
tokenizer without an end-of-text token either gets a new padding token and its embedding
row; outputs are padded on the side their use needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

TEXTS = [
    "the good day is great and the room is fine",
    "a bad trip and an awful broken dull match",
    "mood of good? positive. mood of awful? negative.",
]


def byte_bpe(specials: list[str]):
    """A byte-level BPE tokenizer learned here, like GPT-2's: no padding token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXTS * 10, trainer)
    eos = {"bos_token": specials[0], "eos_token": specials[0]} if specials else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **eos)


def save_decoder(folder: Path, family: str, tokenizer) -> Path:
    """A tiny random `family` causal LM sized to `tokenizer`, saved with it."""
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 64,
    }
    if family == "opt":
        # OPT's own config says pad 1: the tokenizer's padding id must win.
        shape.update(ffn_dim=64, word_embed_proj_dim=32, pad_token_id=1)
    else:
        shape.update(intermediate_size=64)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    config = AutoConfig.for_model(family, bos_token_id=eos, eos_token_id=eos, **shape)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def decoders(tmp_path_factory) -> dict[str, Path]:
    """Folders as a person brings them: OPT and Phi with an end-of-text token but no
    padding token, and an OPT whose tokenizer has no special token at all."""
    root = tmp_path_factory.mktemp("decoders")
    folders = {}
    for name, family, specials in (
        ("opt", "opt", ["<|endoftext|>"]),
        ("phi", "phi", ["<|endoftext|>"]),
        ("bare", "opt", []),
    ):
        tokenizer = byte_bpe(specials)
        assert tokenizer.pad_token is None
        folders[name] = save_decoder(root / name, family, tokenizer)
    return folders


def plan(folder: Path, kind: str, data: str) -> str:
    head = "objective: causal_lm" if kind == "pretrain" else "task: sequence_classification"
    return f"""
name: t
stages:
  - name: s
    kind: {kind}
    {head}
    model: {{path: {folder}}}
    data: {data}
    batch_size: 8
    max_steps: 4
    log_every_steps: 1
"""


CORPUS = "{path: corpus.txt, max_length: 24, eval_ratio: 0.1}"
SENTIMENT = "{path: sentiment.csv, max_length: 24, eval_ratio: 0.2}"


def tokenizer_notes(result) -> list[str]:
    return [e.message for e in result.events("tokenizer")]


@pytest.mark.slow
def test_decoders_without_a_padding_token_pretrain_with_their_eos(train_stage_of, decoders):
    from transformers import AutoTokenizer

    for name in ("opt", "phi"):
        result = train_stage_of(plan(decoders[name], "pretrain", CORPUS))
        assert result.outcome == "finished"
        losses = list(result.series("train/loss").values())
        assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
        tokenizer = result.recipe.tokenizer
        assert tokenizer.pad_token == "<|endoftext|>" and result.recipe.pad_id == 0
        assert result.recipe.model.config.pad_token_id == 0
        [note] = tokenizer_notes(result)
        assert note.startswith("the tokenizer has no padding token: batches are padded with")
        [out] = result.recipe.save()
        saved = AutoTokenizer.from_pretrained(out)
        # The output carries its padding token, on the side batched generation needs.
        assert saved.pad_token == "<|endoftext|>" and saved.padding_side == "left"


@pytest.mark.slow
def test_a_decoder_classifier_reads_each_rows_last_real_token(train_stage_of, decoders):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result = train_stage_of(plan(decoders["opt"], "train", SENTIMENT))
    assert result.outcome == "finished"
    # OPT's config said pad 1, a real token of this tokenizer; the classifier now looks
    # for the tokenizer's padding id.
    assert result.recipe.model.config.pad_token_id == 0
    [out] = result.recipe.save()
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.padding_side == "right"
    texts = ["a great day", "an awful broken room and a dull match"]
    with torch.no_grad():
        batch = model(**tokenizer(texts, return_tensors="pt", padding=True)).logits
        alone = model(**tokenizer(texts[:1], return_tensors="pt")).logits
    torch.testing.assert_close(batch[:1], alone)


@pytest.mark.slow
def test_a_tokenizer_without_eos_gets_a_new_padding_token(train_stage_of, decoders):
    result = train_stage_of(plan(decoders["bare"], "pretrain", CORPUS))
    assert result.outcome == "finished"
    tokenizer, model = result.recipe.tokenizer, result.recipe.model
    assert tokenizer.pad_token == "<|pad|>"
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id == len(tokenizer) - 1
    [note] = tokenizer_notes(result)
    assert "a new padding token '<|pad|>'" in note


# ChatML, as many instruction-tuned decoders ship it; its turn markers are special tokens.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def chat_decoder(tmp_path_factory) -> Path:
    """A Phi folder whose tokenizer has its own chat template (and no padding token)."""
    tokenizer = byte_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer.chat_template = CHATML
    return save_decoder(tmp_path_factory.mktemp("chat") / "phi-chat", "phi", tokenizer)


def chat_plan(folder: Path, kind: str, data: str) -> str:
    head = "task: causal_lm_sft" if kind == "train" else "loss: dpo"
    return f"""
name: t
stages:
  - name: s
    kind: {kind}
    {head}
    model: {{path: {folder}}}
    data: {data}
    batch_size: 8
    max_steps: 3
"""


@pytest.mark.slow
def test_the_tokenizers_chat_template_renders_training_rows_and_predict_prompts(
    train_stage_of, chat_decoder
):
    from engine.predict.predictor import Predictor, Sampling

    data = "{path: instructions.jsonl, prompt_column: prompt, response_column: response}"
    result = train_stage_of(chat_plan(chat_decoder, "train", data))
    assert result.outcome == "finished"
    tokenizer = result.recipe.tokenizer
    row = result.recipe.train_rows[0]
    text = tokenizer.decode(row["input_ids"])
    assert text.startswith("<|im_start|>user\nmood of ") and "<|im_start|>assistant\n" in text
    # The loss is on the answer and its end of turn (as the template writes it) only.
    learned = tokenizer.decode([t for t in row["labels"] if t != -100])
    assert learned in ("positive<|im_end|>\n", "negative<|im_end|>\n"), learned
    [event] = [e for e in result.events("data") if "chat_template" in (e.data or {})]
    assert event.data["chat_template"] == CHATML
    assert "the tokenizer's own chat template" in event.message
    [out] = result.recipe.save()
    predictor = Predictor(out)
    assert predictor.describe()["prompt_format"] == "chat"
    seen = []
    forward = predictor.model.forward

    def spy(*args, **kwargs):
        seen.append(kwargs["input_ids"])
        return forward(*args, **kwargs)

    predictor.model.forward = spy
    answer = predictor.predict("mood of good?", Sampling(max_new_tokens=3, temperature=0))
    assert answer["tokens"] <= 3
    # The prompt went in as training rendered it: the user's turn, the assistant's header.
    prompt = predictor.tokenizer.decode(seen[0][0])
    assert prompt == "<|im_start|>user\nmood of good?<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.slow
def test_preference_pairs_are_rendered_with_the_chat_template(train_stage_of, chat_decoder, prefs):
    data = "{path: prefs.jsonl, max_length: 48}"
    result = train_stage_of(chat_plan(chat_decoder, "preference", data))
    assert result.outcome == "finished"
    tokenizer = result.recipe.tokenizer
    row = result.recipe.train_rows[0]
    chosen = tokenizer.decode(row["input_ids"])
    rejected = tokenizer.decode(row["rejected_input_ids"])
    assert chosen.startswith("<|im_start|>user\nthe mood of ")
    assert chosen.endswith("<|im_end|>\n") and rejected.endswith("<|im_end|>\n")
    assert {tokenizer.decode([t for t in row["labels"] if t != -100])} <= {
        "positive<|im_end|>\n",
        "negative<|im_end|>\n",
    }
