"""Built-in tokenizers: learned deterministically (same corpus → same ids in any process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.data.tokenizer import learn_merges, train_tokenizer

CODE = """
import json, sys
from engine.data.tokenizer import train_tokenizer
lines = open(sys.argv[1]).read().splitlines()
out = {}
for arch in ("bert", "gpt2"):
    out[arch] = sorted(train_tokenizer(arch, lines, 400).get_vocab().items())
print(json.dumps(out))
"""


def test_training_is_deterministic_across_processes(data_dir):
    runs = [
        subprocess.run(
            [sys.executable, "-c", CODE, str(data_dir / "corpus.txt")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert len(json.loads(runs[0])["bert"]) <= 400


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
def test_tokenizers_encode_and_decode(arch, data_dir):
    lines = (data_dir / "corpus.txt").read_text().splitlines()
    tok = train_tokenizer(arch, lines, 500)
    ids = tok("the great team", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids).strip() == "the great team"
    assert tok.pad_token_id is not None
    if arch == "bert":
        assert tok.mask_token == "[MASK]" and tok("x")["input_ids"][0] == tok.cls_token_id
        assert tok.tokenize("zebra")  # unseen word: characters still cover it
    else:
        assert tok.eos_token_id is not None
        assert tok.decode(tok("naïve ✓", add_special_tokens=False)["input_ids"]) == "naïve ✓"


def test_merges_prefer_frequent_pairs_and_break_ties_alphabetically():
    words = {("a", "b", "c"): 5, ("b", "c"): 5, ("x", "y"): 3, ("a", "x"): 3}
    from collections import Counter

    merges = learn_merges(Counter(words), 3, lambda a, b: a + b)
    assert merges[0] == ("b", "c")  # 10 occurrences
    assert merges[1] == ("a", "bc")  # 5
    assert merges[2] == ("a", "x")  # 3, tied with (x, y): alphabetical first
