"""Tokenizers for built-in models, learned from the stage's own corpus.

The trainers of `tokenizers` break ties between equally frequent pairs in hash order, which
Rust seeds at random per process: two trainings on the same corpus give different
vocabularies, so two runs with the same seed would not train the same model. The merges are
therefore learned here, deterministically (ties go to the alphabetically first pair), and
the fast `tokenizers` models are built from the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

# The merges are learned by the standard-library function the window also calls to know a
# built-in tokenizer's size before training (engine.spec.vocabulary).
from engine.spec.vocabulary import learn_merges

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
GPT2_SPECIALS = ["<|endoftext|>", "<|pad|>"]
CONTINUATION = "##"
# Decoder families whose built-in models get GPT-2's byte-level BPE (it encodes any text).
BYTE_BPE_FAMILIES = ("gpt2", "llama", "qwen2", "mistral", "gpt_neox")


def train_tokenizer(arch: str, texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a tokenizer that fits a built-in architecture on `texts`.

    BERT models get a lower-cased WordPiece vocabulary with [CLS]/[SEP]/[MASK]; decoders
    (GPT-2, Llama, Qwen2, Mistral, GPT-NeoX) a byte-level BPE that can encode any text. The same texts always give the same tokenizer.

    Args:
        arch: 'bert' or one of BYTE_BPE_FAMILIES.
        texts: the training corpus.
        vocab_size: the largest vocabulary to learn.

    Returns:
        A fast tokenizer ready for `save_pretrained`.
    """
    if arch == "bert":
        return _train_wordpiece(texts, vocab_size)
    if arch in BYTE_BPE_FAMILIES:
        return _train_byte_bpe(texts, vocab_size)
    raise ValueError(f"no tokenizer recipe for architecture '{arch}'")


def _word_counts(texts: Iterable[str], normalizer, pre_tokenizer) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        if normalizer is not None:
            text = normalizer.normalize_str(text)
        counts.update(piece for piece, _ in pre_tokenizer.pre_tokenize_str(text))
    return counts


def _train_wordpiece(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts = _word_counts(texts, normalizer, pre_tokenizer)
    # A word starts with its first character; every later piece carries "##".
    words = Counter({(w[0], *(CONTINUATION + ch for ch in w[1:])): n for w, n in counts.items()})
    chars = sorted({ch for w in counts for ch in w})
    alphabet = chars + [CONTINUATION + ch for ch in chars]
    budget = max(vocab_size - len(BERT_SPECIALS) - len(alphabet), 0)
    merges = learn_merges(words, budget, lambda a, b: a + b[len(CONTINUATION) :])
    pieces = BERT_SPECIALS + alphabet + [a + b[len(CONTINUATION) :] for a, b in merges]
    vocab = {piece: i for i, piece in enumerate(dict.fromkeys(pieces))}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tok.decoder = decoders.WordPiece(prefix=CONTINUATION)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _train_byte_bpe(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    counts = _word_counts(texts, None, pre_tokenizer)
    words = Counter({tuple(w): n for w, n in counts.items()})
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    budget = max(vocab_size - len(GPT2_SPECIALS) - len(alphabet), 0)
    merges = learn_merges(words, budget, lambda a, b: a + b)
    pieces = GPT2_SPECIALS + alphabet + [a + b for a, b in merges]
    vocab = {piece: i for i, piece in enumerate(dict.fromkeys(pieces))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(GPT2_SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|pad|>",
    )
