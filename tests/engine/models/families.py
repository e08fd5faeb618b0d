"""Tiny models of the families people bring, saved as folders the way checkpoints come:
a random transformers config at hidden size 32 with two layers, a tokenizer of the family's
real kind learned on the test corpus (WordPiece; byte-level BPE, most of them without a pad
token; SentencePiece-style Unigram) with the family's special tokens, and the
pretraining head (masked-LM or causal-LM). `classifier_folder` adds a classifier with the
sentiment labels, as a trained teacher or ensemble member would be saved.

Nothing here is trained: the folders exercise loading, heads, tokenizers and stage
mechanics, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ENCODERS = [
    "bert",
    "roberta",
    "xlm-roberta",
    "electra",
    "albert",
    "deberta-v2",
    "distilbert",
    "modernbert",
]
DECODERS = ["gpt2", "llama", "qwen2", "mistral", "phi", "opt", "gpt_neox", "gemma"]
FAMILIES = ENCODERS + DECODERS

WORDPIECE, BYTE_BPE, UNIGRAM = "WordPiece", "byte-level BPE", "Unigram (SentencePiece)"

# family -> (tokenizer kind, its tokens by role, the tokenizer class its real checkpoints
# name (documentation only: see save_folder), the tokens put around a text: (first, last)).
# Roles: bos, eos, unk, pad, cls, sep, mask. Decoders mostly ship without a pad token.
TOKENIZERS: dict[str, tuple[str, dict[str, str], str, tuple[str | None, str | None]]] = {
    "bert": (WORDPIECE, {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}, "BertTokenizer", ("[CLS]", "[SEP]")),
    "electra": (WORDPIECE, {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}, "ElectraTokenizer", ("[CLS]", "[SEP]")),
    "distilbert": (WORDPIECE, {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}, "DistilBertTokenizer", ("[CLS]", "[SEP]")),
    "roberta": (BYTE_BPE, {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "cls": "<s>", "sep": "</s>", "mask": "<mask>"}, "RobertaTokenizer", ("<s>", "</s>")),
    "modernbert": (BYTE_BPE, {"unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}, "PreTrainedTokenizerFast", ("[CLS]", "[SEP]")),
    "gpt2": (BYTE_BPE, {"bos": "<|endoftext|>", "eos": "<|endoftext|>", "unk": "<|endoftext|>"}, "GPT2Tokenizer", (None, None)),
    "phi": (BYTE_BPE, {"bos": "<|endoftext|>", "eos": "<|endoftext|>", "unk": "<|endoftext|>"}, "CodeGenTokenizer", (None, None)),
    "gpt_neox": (BYTE_BPE, {"bos": "<|endoftext|>", "eos": "<|endoftext|>", "unk": "<|endoftext|>"}, "GPTNeoXTokenizer", (None, None)),
    "opt": (BYTE_BPE, {"bos": "</s>", "eos": "</s>", "unk": "<unk>"}, "GPT2Tokenizer", ("</s>", None)),
    "qwen2": (BYTE_BPE, {"eos": "<|endoftext|>", "unk": "<|endoftext|>"}, "Qwen2Tokenizer", (None, None)),
    "xlm-roberta": (UNIGRAM, {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "cls": "<s>", "sep": "</s>", "mask": "<mask>"}, "XLMRobertaTokenizer", ("<s>", "</s>")),
    "albert": (UNIGRAM, {"pad": "<pad>", "unk": "<unk>", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}, "AlbertTokenizer", ("[CLS]", "[SEP]")),
    "deberta-v2": (UNIGRAM, {"pad": "[PAD]", "cls": "[CLS]", "sep": "[SEP]", "unk": "[UNK]", "mask": "[MASK]"}, "DebertaV2Tokenizer", ("[CLS]", "[SEP]")),
    "llama": (UNIGRAM, {"unk": "<unk>", "bos": "<s>", "eos": "</s>"}, "LlamaTokenizer", ("<s>", None)),
    "mistral": (UNIGRAM, {"unk": "<unk>", "bos": "<s>", "eos": "</s>"}, "LlamaTokenizer", ("<s>", None)),
    "gemma": (UNIGRAM, {"pad": "<pad>", "eos": "<eos>", "bos": "<bos>", "unk": "<unk>"}, "GemmaTokenizer", ("<bos>", None)),
}  # fmt: skip

# Qwen2 checkpoints carry ChatML as their chat template (with its two turn tokens).
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
EXTRA_SPECIALS = {"qwen2": ["<|im_start|>", "<|im_end|>"]}

LAYERS, HIDDEN, HEADS, INTERMEDIATE, POSITIONS = 2, 32, 2, 64, 128


def config_arguments(family: str) -> dict[str, Any]:
    """The family's size arguments (names differ across families) for a tiny model."""
    if family == "gpt2":
        return {"n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, "n_inner": INTERMEDIATE, "n_positions": POSITIONS}  # fmt: skip
    if family == "distilbert":
        return {"dim": HIDDEN, "n_layers": LAYERS, "n_heads": HEADS, "hidden_dim": INTERMEDIATE, "max_position_embeddings": POSITIONS}  # fmt: skip
    args = {
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": POSITIONS,
    }
    if family == "opt":
        args |= {"ffn_dim": INTERMEDIATE, "word_embed_proj_dim": HIDDEN}
    if family == "albert":
        args |= {"embedding_size": 16}
    if family in ("llama", "qwen2", "mistral", "gemma"):
        args |= {"num_key_value_heads": 1, "head_dim": HIDDEN // HEADS}
    if family == "qwen2":
        args |= {"tie_word_embeddings": True}  # as its small checkpoints are
    return args


def corpus(data_dir: Path) -> list[str]:
    """Every text of the test data (conftest.data_dir), so no word is out of vocabulary."""
    lines = (data_dir / "corpus.txt").read_text().splitlines()
    lines += (data_dir / "sentiment.csv").read_text().splitlines()[1:]
    for name in ("entities.jsonl", "instructions.jsonl"):
        for line in (data_dir / name).read_text().splitlines():
            row = json.loads(line)
            lines.append(" ".join(row.get("tokens", [])) or f"{row['prompt']} {row['response']}")
    lines += ["the mood of good is positive negative", "and again? still answer with one word"]
    return lines


def build_tokenizer(family: str, texts: list[str]) -> Any:
    """A fast tokenizer of the family's kind and special tokens, learned on `texts`."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    kind, roles, _, (first, last) = TOKENIZERS[family]
    specials = list(dict.fromkeys(roles.values())) + EXTRA_SPECIALS.get(family, [])
    if kind == WORDPIECE:
        tok = Tokenizer(models.WordPiece(unk_token=roles["unk"]))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials)
    elif kind == BYTE_BPE:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=500,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    else:
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=300, special_tokens=specials, unk_token=roles["unk"]
        )
    tok.train_from_iterator(texts, trainer)
    if first or last:
        ends = [t for t in (first, last) if t]
        around = " ".join(t for t in (first, "$A", last) if t)
        pair = " ".join(t for t in (first, "$A", last, "$B:1", last and f"{last}:1") if t)
        tok.post_processor = processors.TemplateProcessing(
            single=around,
            pair=pair,
            special_tokens=[(t, tok.token_to_id(t)) for t in dict.fromkeys(ends)],
        )
    names = {"bos": "bos_token", "eos": "eos_token", "unk": "unk_token", "pad": "pad_token"}
    names |= {"cls": "cls_token", "sep": "sep_token", "mask": "mask_token"}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, **{names[role]: token for role, token in roles.items()}
    )
    if family in EXTRA_SPECIALS:
        tokenizer.add_special_tokens({"additional_special_tokens": EXTRA_SPECIALS[family]})
    if family == "qwen2":
        tokenizer.chat_template = CHATML
    return tokenizer


def build_config(family: str, tokenizer: Any, **extra: Any) -> Any:
    """The family's tiny config for `tokenizer` (its size and special token ids)."""
    from transformers import AutoConfig

    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token else tokenizer.cls_token_id,
        "eos_token_id": tokenizer.eos_token_id if tokenizer.eos_token else tokenizer.sep_token_id,
    }
    if family == "modernbert":
        ids |= {"cls_token_id": tokenizer.cls_token_id, "sep_token_id": tokenizer.sep_token_id}
    return AutoConfig.for_model(family, **config_arguments(family), **ids, **extra)


def save_folder(folder: Path, model: Any, tokenizer: Any) -> Path:
    """Save as a checkpoint is published: weights, config and `tokenizer.json`.

    The tokenizer is saved as the generic fast class (as tokenizer.json-only checkpoints
    are): transformers' family classes add tokens of their own while loading (GPT-NeoX's
    pad token, Qwen2's pad = eos), which would hide what a checkpoint without them does.
    """
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def family_folder(family: str, root: Path, texts: list[str]) -> Path:
    """`root/family`: the family's pretraining model (masked-LM or causal-LM) and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    tokenizer = build_tokenizer(family, texts)
    torch.manual_seed(0)
    auto = AutoModelForMaskedLM if family in ENCODERS else AutoModelForCausalLM
    model = auto.from_config(build_config(family, tokenizer))
    return save_folder(root / family, model, tokenizer)


def classifier_folder(family: str, root: Path, labels: list[str]) -> Path:
    """`root/family-classifier`: the family's model with a sequence-classification head
    for `labels` (untrained), saved beside its pretraining folder's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    source = root / family
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    config = AutoConfig.from_pretrained(
        str(source),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_config(config)
    return save_folder(root / f"{family}-classifier", model, tokenizer)
