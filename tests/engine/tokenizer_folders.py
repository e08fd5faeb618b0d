"""Tokenizers of the real kinds, built with `tokenizers` from a small corpus and saved as
folders (nothing is downloaded): WordPiece as DistilBERT's and ELECTRA's, byte-level BPE as
RoBERTa's; and tiny random models of those families saved with them, as people bring
theirs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import transformers
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
# Tiny shapes: 32 wide, 2 layers, 2 heads.
TINY = {
    "roberta": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2},
    "electra": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2},
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
}
FAST = {
    "roberta": transformers.RobertaTokenizerFast,
    "electra": transformers.ElectraTokenizerFast,
    "distilbert": transformers.DistilBertTokenizerFast,
}


def wordpiece(texts: Iterable[str], vocab_size: int, family: str = "distilbert"):
    """A lower-casing WordPiece tokenizer with [CLS] … [SEP] (BERT's kind)."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=WORDPIECE_SPECIALS)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.decoder = decoders.WordPiece()
    names = ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token")
    specials = dict(zip(names, ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"], strict=True))
    return FAST[family](tokenizer_object=tok, **specials)


def byte_bpe(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer with <s> … </s> (RoBERTa's kind)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=ROBERTA_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.decoder = decoders.ByteLevel()
    return transformers.RobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


def tiny_model(folder: Path, family: str, tokenizer, max_length: int = 64) -> Path:
    """A tiny random masked-LM model of `family` with `tokenizer`, saved in `folder`."""
    extra = {"max_position_embeddings": max_length + 2, "pad_token_id": tokenizer.pad_token_id}
    if family != "distilbert":
        extra["intermediate_size"] = 64
    config = transformers.AutoConfig.for_model(
        family, vocab_size=len(tokenizer), **TINY[family], **extra
    )
    transformers.set_seed(0)
    transformers.AutoModelForMaskedLM.from_config(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
