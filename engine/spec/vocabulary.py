"""How many tokens a built-in model's tokenizer will have, known before training with the
standard library only (the window cannot import `tokenizers`).

A built-in tokenizer learns at most `vocab_size` pieces from the stage's texts
(engine.data.tokenizer): its specials, the characters it saw (BERT: each also as a
'##' continuation; byte-level BPE: all 256 bytes), and the merges it learned, which stop
early when every word of a small corpus is one piece. The merges are learned by
`learn_merges`, the very function the engine's tokenizer trainer calls, on words split
as `tokenizers` splits them (BERT: lower-cased, accents stripped, split at spaces and
punctuation; byte-level: GPT-2's pattern over UTF-8 bytes), so the count is the engine's.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
GPT2_SPECIALS = ["<|endoftext|>", "<|pad|>"]
CONTINUATION = "##"


def learn_merges(
    words: Counter[tuple[str, ...]], budget: int, join: Callable[[str, str], str]
) -> list[tuple[str, str]]:
    """Byte-pair merges, most frequent pair first, ties to the alphabetically first pair.

    Args:
        words: each word as its initial symbols, with its count in the corpus.
        budget: the most merges to learn.
        join: how two symbols merge into one.
    """
    seqs = [list(w) for w in words]
    counts = list(words.values())
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, seq in enumerate(seqs):
        for pair in zip(seq, seq[1:], strict=False):
            pairs[pair] += counts[i]
            where[pair].add(i)
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while heap and len(merges) < budget:
        count, pair = heapq.heappop(heap)
        if pairs.get(pair, 0) != -count or count == 0:
            continue  # a stale heap entry: the pair's count has changed since
        merges.append(pair)
        merged = join(*pair)
        touched = set()
        for i in sorted(where.pop(pair, ())):
            seq, c = seqs[i], counts[i]
            for old in zip(seq, seq[1:], strict=False):
                pairs[old] -= c
                touched.add(old)
            out, j = [], 0
            while j < len(seq):
                if j + 1 < len(seq) and (seq[j], seq[j + 1]) == pair:
                    out.append(merged)
                    j += 2
                else:
                    out.append(seq[j])
                    j += 1
            seqs[i] = out
            for new in zip(out, out[1:], strict=False):
                pairs[new] += c
                where[new].add(i)
                touched.add(new)
        pairs.pop(pair, None)
        for p in touched:
            if pairs.get(p, 0) > 0:
                heapq.heappush(heap, (-pairs[p], p))
    return merges


# -- BERT: BertNormalizer(lowercase=True) and BertPreTokenizer, as `tokenizers` does them ----


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf", "Cn", "Co", "Cs")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B920 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


# ASCII text, the common case, in one pass: control characters dropped, white space as
# spaces, lower case.
_ASCII_CONTROLS = {c: None for c in range(32) if chr(c) not in "\t\n\r"} | {127: None}
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def bert_normalize(text: str) -> str:
    """Control characters dropped, white space as spaces, CJK characters spaced, accents
    stripped, lower case."""
    if text.isascii():
        return text.translate(_ASCII_CONTROLS).lower()
    out = []
    for ch in text:
        if ch in ("\0", "\ufffd") or _is_control(ch):
            continue
        if ch in "\t\n\r" or ch.isspace():
            out.append(" ")
        elif _is_cjk(ord(ch)):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFD", "".join(out))
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn").lower()


def _is_punctuation(ch: str) -> bool:
    return (ch.isascii() and not ch.isalnum() and ch.isprintable() and not ch.isspace()) or (
        unicodedata.category(ch).startswith("P")
    )


def bert_words(text: str) -> Iterable[str]:
    """Words of normalised text: split at white space, each punctuation mark a word."""
    if text.isascii():
        yield from _ASCII_WORDS.findall(text)
        return
    for chunk in text.split():
        word = ""
        for ch in chunk:
            if _is_punctuation(ch):
                if word:
                    yield word
                yield ch
                word = ""
            else:
                word += ch
        if word:
            yield word


# -- byte-level BPE: GPT-2's pattern over UTF-8 bytes shown as printable characters ---------

# \p{L} and \p{N} as the standard library can say them: letters are word characters that are
# not digits or '_'; numbers are digits.
_GPT2_PATTERN = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
)


def _bytes_to_unicode() -> dict[int, str]:
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


BYTE_CHARS = _bytes_to_unicode()


def byte_words(text: str) -> Iterable[str]:
    """Pieces of GPT-2's pre-tokenizer, each as its bytes' printable characters."""
    for piece in _GPT2_PATTERN.findall(text):
        yield "".join(BYTE_CHARS[b] for b in piece.encode("utf-8"))


# -- the count -----------------------------------------------------------------------------


def learned_vocab_size(arch: str, texts: Iterable[str], vocab_size: int) -> int:
    """The number of tokens of the tokenizer a built-in `arch` model learns from `texts`
    with at most `vocab_size` pieces (engine.data.tokenizer.train_tokenizer)."""
    words: Counter[str] = Counter()
    bert = arch == "bert"
    for text in texts:
        words.update(bert_words(bert_normalize(text)) if bert else byte_words(text))
    if bert:
        chars = sorted({ch for w in words for ch in w})
        alphabet = chars + [CONTINUATION + ch for ch in chars]
        specials = BERT_SPECIALS
        symbols = Counter(
            {(w[0], *(CONTINUATION + ch for ch in w[1:])): n for w, n in words.items()}
        )
    else:
        alphabet = sorted(BYTE_CHARS.values())
        specials = GPT2_SPECIALS
        symbols = Counter({tuple(w): n for w, n in words.items()})
    budget = max(vocab_size - len(specials) - len(alphabet), 0)
    # Every word of several symbols ends as one piece of its own: with at least `budget`
    # of them, the merges fill the budget (a shortcut for large corpora).
    if sum(1 for w in symbols if len(w) > 1) >= budget:
        return len(dict.fromkeys(specials + alphabet)) + budget
    if bert:
        merges = learn_merges(symbols, budget, lambda a, b: a + b[len(CONTINUATION) :])
        pieces = [a + b[len(CONTINUATION) :] for a, b in merges]
    else:
        merges = learn_merges(symbols, budget, lambda a, b: a + b)
        pieces = [a + b for a, b in merges]
    return len(dict.fromkeys(specials + alphabet + pieces))
