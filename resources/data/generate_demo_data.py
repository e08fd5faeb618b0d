"""Generate the built-in demo's data: a small synthetic English-like world of news, reviews
and people, deterministic for a seed, with labels a tiny model can learn but not from one
token (several cue words per class, shared distractors, negations, ~4% label noise).

    python resources/data/generate_demo_data.py [--out DIR] [--seed N]

Standard library only. Every file gets its own random stream, so files are byte-identical
across runs and machines for the same seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

from demo_words import (  # beside this script
    ADJS,
    ADVERBS,
    BLAME,
    DETS,
    FIRST,
    LABELS,
    LAST,
    NEGATIVE,
    NUMBERS,
    OPPOSITES,
    ORGS,
    PLACES,
    POSITIVE,
    PRAISE,
    SAY,
    STATES,
    TAILS,
    TOPICS,
)


def _person(rng: random.Random) -> list[str]:
    return [rng.choice(FIRST)] + ([rng.choice(LAST)] if rng.random() < 0.4 else [])


def _news(rng: random.Random, topic: str) -> str:
    """One news-like sentence about `topic`, sometimes with a word from another topic."""
    nouns, verbs = TOPICS[topic]
    n1, n2, verb = rng.choice(nouns), rng.choice(nouns), rng.choice(verbs)
    det, adj, tail = rng.choice(DETS), rng.choice(ADJS), rng.choice(TAILS)
    form = rng.randrange(5)
    if form == 0:
        words = f"{det} {adj} {n1} {verb} {rng.choice(DETS)} {n2} {tail}"
    elif form == 1:
        words = f"{' '.join(_person(rng))} {rng.choice(SAY)} the {n1} {verb} a {adj} {n2}"
    elif form == 2:
        words = f"in {rng.choice(PLACES)} the {n1} {verb} the {n2} {tail}"
    elif form == 3:
        words = f"{rng.choice(ORGS)} {rng.choice(SAY)} that {det} {n1} {verb} the {n2}"
    else:
        words = f"reports from {rng.choice(PLACES)} say the {adj} {n1} was {rng.choice(STATES)}"
    if rng.random() < 0.3:  # distractor: a noun from another topic
        other = rng.choice([t for t in LABELS if t != topic])
        words += f" near the {rng.choice(TOPICS[other][0])}"
    return words


def _review(rng: random.Random, positive: bool) -> str:
    """One review of something from a random topic; 15% negate the adjective."""
    nouns = TOPICS[rng.choice(LABELS)][0]
    noun = rng.choice(nouns)
    negated = rng.random() < 0.15
    # "not great" is negative and "not terrible" positive: the model must read both words.
    adjective = rng.choice(POSITIVE if positive != negated else NEGATIVE)
    core = (
        f"{rng.choice(['not', 'not at all', 'never'])} {adjective}"
        if negated
        else (f"{rng.choice(ADVERBS)} {adjective}")
    )
    form = rng.randrange(5)
    if form == 0:
        words = f"the {noun} was {core}"
    elif form == 1:
        words = f"i found the {noun} {core} {rng.choice(TAILS)}"
    elif form == 2:
        words = f"{rng.choice(DETS)} {rng.choice(ADJS)} {noun} felt {core}"
    elif form == 3:
        words = f"honestly the {noun} is {core} and so is the {rng.choice(nouns)}"
    else:
        words = f"we tried the {noun} in {rng.choice(PLACES)} and it was {core}"
    if rng.random() < 0.45:
        words += f" and {rng.choice(PRAISE if positive else BLAME)}"
    elif rng.random() < 0.3:  # neutral distractor shared by both labels
        words += f" although the {rng.choice(nouns)} was {rng.choice(['busy', 'late', 'new'])}"
    return words


def _entities(rng: random.Random) -> tuple[list[str], list[str]]:
    """A sentence with people (PER), places (LOC) and organisations (ORG), BIO-tagged."""
    slots = {
        "PER": lambda: _person(rng),
        "LOC": lambda: rng.choice(PLACES).split(),
        "ORG": lambda: rng.choice(ORGS).split(),
    }
    noun = rng.choice(TOPICS[rng.choice(LABELS)][0])
    template = rng.choice(
        [
            "PER flew to LOC with ORG",
            "ORG hired PER in LOC",
            f"in LOC PER met the {noun}",
            "PER works for ORG",
            f"the {noun} in LOC was {rng.choice(ADJS)}",
            "PER and PER visited LOC last year",
            f"ORG opened a {noun} in LOC",
            f"PER {rng.choice(SAY)} that ORG will move to LOC",
            f"the {noun} was {rng.choice(STATES)}",
        ]
    )
    tokens: list[str] = []
    tags: list[str] = []
    for word in template.split():
        if word in slots:
            name = slots[word]()
            tokens += name
            tags += [f"B-{word}"] + [f"I-{word}"] * (len(name) - 1)
        else:
            tokens.append(word)
            tags.append("O")
    return tokens, tags


def _instruction(rng: random.Random) -> dict[str, str]:
    """A short prompt and its answer: topic, sentiment, arithmetic or word questions."""
    kind = rng.randrange(6)
    if kind == 0:
        topic = rng.choice(LABELS)
        return {"prompt": f"which topic is this: {_news(rng, topic)}?", "response": topic}
    if kind == 1:
        positive = rng.random() < 0.5
        return {
            "prompt": f"is this review positive or negative: {_review(rng, positive)}?",
            "response": "positive" if positive else "negative",
        }
    if kind == 2:
        a, b = rng.randrange(11), rng.randrange(11)
        if rng.random() < 0.5:
            return {
                "prompt": f"what is {NUMBERS[a]} plus {NUMBERS[b]}?",
                "response": NUMBERS[a + b],
            }
        a, b = max(a, b), min(a, b)
        return {"prompt": f"what is {NUMBERS[a]} minus {NUMBERS[b]}?", "response": NUMBERS[a - b]}
    if kind == 3:
        pair = rng.choice(OPPOSITES)
        word, answer = pair if rng.random() < 0.5 else pair[::-1]
        return {"prompt": f"what is the opposite of {word}?", "response": answer}
    if kind == 4:
        tokens, tags = _entities(rng)
        while "B-PER" not in tags:
            tokens, tags = _entities(rng)
        start = tags.index("B-PER")
        end = start + 1
        while end < len(tags) and tags[end] == "I-PER":
            end += 1
        return {
            "prompt": f"who is the person in: {' '.join(tokens)}?",
            "response": " ".join(tokens[start:end]),
        }
    words = _news(rng, rng.choice(LABELS)).split()[: rng.randrange(3, 9)]
    return {"prompt": f"how many words are in: {' '.join(words)}?", "response": NUMBERS[len(words)]}


def _wrong_answer(rng: random.Random, row: dict[str, str]) -> str:
    """A plausible wrong answer to an instruction: another label, a number off by one or
    two, the question's own word, another word of the sentence."""
    prompt, right = row["prompt"], row["response"]
    if prompt.startswith("which topic"):
        return rng.choice([t for t in LABELS if t != right])
    if prompt.startswith("is this review"):
        return "negative" if right == "positive" else "positive"
    if right in NUMBERS:
        n = NUMBERS.index(right)
        options = [NUMBERS[k] for k in (n - 2, n - 1, n + 1, n + 2) if 0 <= k < len(NUMBERS)]
        return rng.choice(options)
    if prompt.startswith("what is the opposite of"):
        return prompt.removeprefix("what is the opposite of ").rstrip("?")
    words = [w for w in prompt.split(":", 1)[-1].rstrip("?").split() if w not in right.split()]
    return rng.choice(words)


def _preference(rng: random.Random) -> dict[str, str]:
    """An instruction with its right answer (chosen) and a wrong one (rejected)."""
    row = _instruction(rng)
    return {"prompt": row["prompt"], "chosen": row["response"], "rejected": _wrong_answer(rng, row)}


def _fact(rng: random.Random) -> str:
    """A plain sentence of the arithmetic / opposites kind for the corpus."""
    if rng.random() < 0.5:
        a, b = rng.randrange(11), rng.randrange(11)
        return f"{NUMBERS[a]} plus {NUMBERS[b]} is {NUMBERS[a + b]}"
    word, answer = rng.choice(OPPOSITES)
    return f"the opposite of {word} is {answer}"


def _noisy(rng: random.Random, label: str, labels: list[str], rate: float = 0.04) -> str:
    """`label`, or with probability `rate` a random label (possibly the same one)."""
    return rng.choice(labels) if rng.random() < rate else label


STRONG = {"excellent", "superb", "brilliant", "fantastic", "perfect", "wonderful"}
STRONG |= {"terrible", "dreadful", "horrible", "useless", "awful"}
INTENSE = {"really", "very", "truly", "so"}


def _rating(text: str, positive: bool) -> str:
    """How strongly a review means what it says, 1 (very bad) to 5 (very good), from its
    words alone (no random draw, so the reviews stay what they were): 4 or 2 by its true
    sentiment, one step further for a strong adjective, half a step for an intensifying
    adverb and for an added praise or blame, and a negated adjective ("not great", "not
    terrible") only half as far from the middle."""
    words = text.split()
    sign = 1 if positive else -1
    strength = 1.0
    strength += 1.0 if STRONG & set(words) else 0.0
    strength += 0.5 if INTENSE & set(words) else 0.0
    strength += 0.5 if any(p in text for p in PRAISE + BLAME) else 0.0
    if {"not", "never"} & set(words):
        strength /= 2
    return f"{min(max(3 + sign * strength, 1.0), 5.0):.2f}"


def _reviews(rng: random.Random, n: int) -> list[tuple[str, ...]]:
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        text = _review(rng, i % 2 == 0)
        rows.append((text, _noisy(rng, label, ["negative", "positive"]), _rating(text, i % 2 == 0)))
    rng.shuffle(rows)
    return rows


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(line + "\n" for line in lines)
    return path


def _write_csv(
    path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("text", "label")
) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(list(header))
        writer.writerows(rows)
    return path


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    return _write_lines(path, [json.dumps(row, ensure_ascii=False) for row in rows])


README = """\
# Demo data (synthetic)

Small offline data sets of the built-in demo plan (`resources/plans/demo.yaml`): masked-LM
pretraining on `corpus.txt`, then topic classification (`topics.csv`), then sentiment
fine-tuning (`reviews.csv`). Everything here is **synthetic**: invented sentences about a tiny
English-like world (sports, science, business, travel; a few invented people, places and
companies), about {vocab} distinct words. Labels are learnable from the words but not from a
single token: several cue words per class, distractors shared across classes, negations in
reviews ("not good" is negative, "not bad" positive) and about 4% label noise.

| file | format | columns / fields | rows |
|---|---|---|---|
| `corpus.txt` | text, one sentence a line | - (unlabelled) | {corpus} |
| `topics.csv` | CSV with header | `text`, `label` (`business`, `science`, `sports`, `travel`) | {topics} |
| `reviews.csv` | CSV with header | `text`, `label` (`negative`, `positive`), `rating` (1.00-5.00: how strongly the review means it, from its words: strong adjectives, intensifiers, added praise or blame; negation halves it) | {reviews} |
| `reviews_named_splits/train.jsonl` | JSON lines | `text`, `label` | {train} |
| `reviews_named_splits/validation.jsonl` | JSON lines | `text`, `label` | {validation} |
| `entities.jsonl` | JSON lines | `tokens` (words), `tags` (BIO: `O`, `B-PER`, `I-PER`, `B-LOC`, `I-LOC`, `B-ORG`, `I-ORG`) | {entities} |
| `instructions.jsonl` | JSON lines | `prompt`, `response` (topic, sentiment, arithmetic in words, opposites, names, word counts) | {instructions} |
| `preferences.jsonl` | JSON lines | `prompt`, `chosen` (the right answer), `rejected` (a plausible wrong one: another label, a number off by one or two, the question's word, another word of the sentence) | {preferences} |

All files are UTF-8 with `\\n` line ends. They were made, and can be remade byte for byte, with

    python resources/data/generate_demo_data.py            # --out DIR, --seed N (default 1234)

(standard library only). `tests/test_resources.py` checks that the committed files match the
generator, their columns, sizes and label balance, and that a bag-of-words Naive Bayes learns
the labels far above the majority-class baseline.
"""


def generate(out_dir: Path, seed: int = 1234) -> dict[str, Path]:
    """Write every demo file into `out_dir`; returns their paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def rng(name: str) -> random.Random:  # one independent stream per file
        return random.Random(f"{seed}:{name}")

    r = rng("corpus")
    corpus = []
    for _ in range(4000):
        kind = r.random()
        if kind < 0.45:
            corpus.append(_news(r, r.choice(LABELS)))
        elif kind < 0.8:
            corpus.append(_review(r, r.random() < 0.5))
        elif kind < 0.92:
            corpus.append(" ".join(_entities(r)[0]))
        else:
            corpus.append(_fact(r))

    r = rng("topics")
    topics = [(_news(r, LABELS[i % 4]), _noisy(r, LABELS[i % 4], LABELS)) for i in range(2000)]
    r.shuffle(topics)

    r = rng("named_splits")
    splits = {
        name: [{"text": t, "label": lab} for t, lab, _ in _reviews(r, n)]
        for name, n in (("train", 300), ("validation", 100))
    }

    r = rng("entities")
    entities = [dict(zip(("tokens", "tags"), _entities(r), strict=True)) for _ in range(600)]
    r = rng("instructions")
    instructions = [_instruction(r) for _ in range(400)]
    r = rng("preferences")
    preferences = [_preference(r) for _ in range(1000)]

    files = {
        "corpus": _write_lines(out_dir / "corpus.txt", corpus),
        "topics": _write_csv(out_dir / "topics.csv", topics),
        "reviews": _write_csv(
            out_dir / "reviews.csv", _reviews(rng("reviews"), 1200), ("text", "label", "rating")
        ),
        "reviews_train": _write_jsonl(
            out_dir / "reviews_named_splits" / "train.jsonl", splits["train"]
        ),
        "reviews_validation": _write_jsonl(
            out_dir / "reviews_named_splits" / "validation.jsonl", splits["validation"]
        ),
        "entities": _write_jsonl(out_dir / "entities.jsonl", entities),
        "instructions": _write_jsonl(out_dir / "instructions.jsonl", instructions),
        "preferences": _write_jsonl(out_dir / "preferences.jsonl", preferences),
    }
    texts = corpus + [t for t, _ in topics] + [" ".join(e["tokens"]) for e in entities]
    texts += [f"{row['prompt']} {row['response']}" for row in instructions]
    vocab = len({w.strip("?:") for text in texts for w in text.split()})
    counts = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in files.items()
    }
    counts["topics"] -= 1  # header rows
    counts["reviews"] -= 1
    files["readme"] = _write_lines(
        out_dir / "README.md",
        README.format(
            vocab=round(vocab, -1),
            corpus=counts["corpus"],
            topics=counts["topics"],
            reviews=counts["reviews"],
            train=counts["reviews_train"],
            validation=counts["reviews_validation"],
            entities=counts["entities"],
            instructions=counts["instructions"],
            preferences=counts["preferences"],
        ).splitlines(),
    )
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    for name, path in generate(args.out, args.seed).items():
        print(f"{name:20s} {path}")


if __name__ == "__main__":
    main()
