"""A saved tokenizer's vocabulary read from its files with `json` alone (validate imports
no `tokenizers` nor `transformers`), and the sentence that names where two vocabularies
first differ. The engine's run-time check words its refusal with the same sentence.

Two vocabularies are one when every id stands for the same token: the models' outputs are
indexed by id, so the same size with other tokens (or the same tokens in another order) is
another vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Files of a SentencePiece model: protocol buffers, which validate does not read.
SENTENCEPIECE_FILES = ("spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
# The differing ids a sentence names.
NAMED = 3


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def folder_vocab(folder: Path) -> dict[str, int] | None:
    """Token → id of the tokenizer saved in `folder`, as `get_vocab()` gives it (added
    tokens included); None when its files cannot be read here (none, or SentencePiece only).

    `tokenizer.json` (a fast tokenizer: BPE, WordPiece, WordLevel or Unigram) comes first,
    as `AutoTokenizer` loads it; else `vocab.txt` (WordPiece, a token per line) or
    `vocab.json` (byte-level BPE), with `added_tokens.json` and the config's added tokens.
    """
    vocab: dict[str, int] = {}
    fast = _json(folder / "tokenizer.json")
    if isinstance(fast, dict) and isinstance(fast.get("model"), dict):
        model = fast["model"].get("vocab")
        if isinstance(model, dict):
            vocab.update({str(t): int(i) for t, i in model.items()})
        elif isinstance(model, list):  # Unigram: [piece, score] pairs, the id is the place
            vocab.update({str(entry[0]): i for i, entry in enumerate(model)})
        else:
            return None
        for added in fast.get("added_tokens") or []:
            vocab[str(added["content"])] = int(added["id"])
        return vocab
    if (folder / "vocab.txt").is_file():
        lines = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        vocab.update({token: i for i, token in enumerate(lines)})
    elif isinstance(slow := _json(folder / "vocab.json"), dict):
        vocab.update({str(t): int(i) for t, i in slow.items()})
    else:
        return None
    added = _json(folder / "added_tokens.json")
    if isinstance(added, dict):
        vocab.update({str(t): int(i) for t, i in added.items()})
    config = _json(folder / "tokenizer_config.json")
    decoder = config.get("added_tokens_decoder") if isinstance(config, dict) else None
    for i, token in (decoder or {}).items():
        if isinstance(token, dict) and "content" in token:
            vocab[str(token["content"])] = int(i)
    return vocab


def unreadable_reason(folder: Path) -> str:
    """Why `folder_vocab` read no vocabulary from `folder`."""
    if any((folder / name).is_file() for name in SENTENCEPIECE_FILES):
        return f"{folder} holds a SentencePiece model, which validate cannot read"
    return f"{folder} has no tokenizer.json, vocab.txt or vocab.json"


def _shown(token: str | None) -> str:
    return "nothing" if token is None else repr(token)


def vocab_difference(
    ours: dict[str, int], theirs: dict[str, int], our_name: str, their_name: str
) -> str | None:
    """None when the two vocabularies are one; else a sentence naming the first ids whose
    tokens differ, e.g. "id 5 is 'Ġthe' for the teacher and '##s' for the student (ids 6,
    7 differ too; 838 tokens each)" (names: "the student", "member 'a'" …)."""
    by_id = [{i: t for t, i in v.items()} for v in (ours, theirs)]
    differing = [
        i for i in sorted(set(by_id[0]) | set(by_id[1])) if by_id[0].get(i) != by_id[1].get(i)
    ]
    if not differing:
        return None
    first = differing[0]
    sentence = (
        f"id {first} is {_shown(by_id[1].get(first))} for {their_name} and "
        f"{_shown(by_id[0].get(first))} for {our_name}"
    )
    notes = []
    if len(differing) > 1:
        more = ", ".join(str(i) for i in differing[1:NAMED])
        rest = len(differing) - NAMED
        notes.append(f"ids {more}{f' and {rest} more' if rest > 0 else ''} differ too")
    if len(ours) == len(theirs):
        notes.append(f"{len(ours)} tokens each")
    else:
        notes.append(f"{len(theirs)} tokens against {len(ours)}")
    return f"{sentence} ({'; '.join(notes)})"
