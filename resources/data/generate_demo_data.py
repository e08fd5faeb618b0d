"""Generate the built-in demo's data: a small synthetic English-like world of news and
reviews, deterministic for a seed, with labels a tiny model can learn (several cue words per
class, shared distractors, negations, a little label noise).

    python resources/data/generate_demo_data.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

TOPICS = {
    "sports": {
        "nouns": ["team", "match", "coach", "goal", "league", "stadium", "player", "season", "final", "striker"],
        "verbs": ["won", "lost", "scored", "trained", "defended", "played"],
    },
    "science": {
        "nouns": ["lab", "experiment", "theory", "molecule", "telescope", "researcher", "cell", "data", "study", "planet"],
        "verbs": ["measured", "discovered", "tested", "observed", "published", "modelled"],
    },
    "business": {
        "nouns": ["market", "company", "price", "investor", "profit", "bank", "startup", "share", "budget", "deal"],
        "verbs": ["bought", "sold", "invested", "merged", "hired", "reported"],
    },
    "travel": {
        "nouns": ["hotel", "flight", "beach", "museum", "island", "train", "guide", "city", "tour", "harbour"],
        "verbs": ["visited", "booked", "explored", "crossed", "toured", "reached"],
    },
}
FILLER_ADJ = ["new", "old", "local", "large", "small", "early", "late", "busy", "quiet", "famous"]
FILLER_TAIL = ["this week", "last year", "in the north", "after a long wait", "on monday", "for the first time", "again", "today"]
PEOPLE = ["anna", "bruno", "chen", "dara", "emil", "fatima", "greta", "hugo", "ines", "jonas"]
PLACES = ["lisbon", "oslo", "kyoto", "lima", "cairo", "dublin", "quebec", "perth"]
ORGS = ["nordbank", "helix labs", "bluewave", "atlas united", "sunair", "corvid media"]
POSITIVE = ["great", "excellent", "wonderful", "lovely", "superb", "pleasant", "brilliant", "friendly"]
NEGATIVE = ["terrible", "awful", "poor", "disappointing", "dreadful", "rude", "broken", "boring"]
NEUTRAL = ["the", "a", "our", "their", "this"]


def _news(rng: random.Random, topic: str) -> str:
    words = TOPICS[topic]
    other = rng.choice([t for t in TOPICS if t != topic])
    parts = [rng.choice(NEUTRAL), rng.choice(FILLER_ADJ), rng.choice(words["nouns"]), rng.choice(words["verbs"]),
             rng.choice(NEUTRAL), rng.choice(words["nouns"])]
    if rng.random() < 0.3:  # a distractor word from another topic
        parts += ["near", "the", rng.choice(TOPICS[other]["nouns"])]
    parts.append(rng.choice(FILLER_TAIL))
    return " ".join(parts)


def _review(rng: random.Random, positive: bool) -> str:
    topic = rng.choice(list(TOPICS))
    noun = rng.choice(TOPICS[topic]["nouns"])
    negated = rng.random() < 0.2
    # "not great" is negative, "not terrible" positive: the model must read both words.
    cue_positive = positive != negated
    adjective = rng.choice(POSITIVE if cue_positive else NEGATIVE)
    adverb = rng.choice(["really", "quite", "very", "truly", "rather"])
    core = f"not {adjective}" if negated else f"{adverb} {adjective}"
    templates = [
        f"the {noun} was {core}",
        f"i found the {noun} {core} {rng.choice(FILLER_TAIL)}",
        f"{rng.choice(NEUTRAL)} {rng.choice(FILLER_ADJ)} {noun} felt {core}",
        f"honestly the {noun} is {core} and the {rng.choice(TOPICS[topic]['nouns'])} too",
    ]
    return rng.choice(templates)


def _noisy(rng: random.Random, label: str, choices: list[str], rate: float = 0.04) -> str:
    return rng.choice(choices) if rng.random() < rate else label


def generate(out_dir: Path, seed: int = 1234) -> dict[str, Path]:
    """Write every demo file into `out_dir`; returns their paths by name."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    topics = sorted(TOPICS)

    lines = []
    for _ in range(4000):
        lines.append(_news(rng, rng.choice(topics)) if rng.random() < 0.6 else _review(rng, rng.random() < 0.5))
    files["corpus"] = out_dir / "corpus.txt"
    files["corpus"].write_text("\n".join(lines) + "\n", encoding="utf-8")

    def write_csv(name: str, rows: list[tuple[str, str]]) -> None:
        path = out_dir / name
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        files[path.stem] = path

    topic_rows = []
    for i in range(2000):
        topic = topics[i % 4]
        topic_rows.append((_news(rng, topic), _noisy(rng, topic, topics)))
    rng.shuffle(topic_rows)
    write_csv("topics.csv", topic_rows)

    def reviews(n: int) -> list[tuple[str, str]]:
        rows = []
        for i in range(n):
            positive = i % 2 == 0
            label = "positive" if positive else "negative"
            rows.append((_review(rng, positive), _noisy(rng, label, ["negative", "positive"])))
        rng.shuffle(rows)
        return rows

    write_csv("reviews.csv", reviews(1200))
    split_dir = out_dir / "reviews_named_splits"
    split_dir.mkdir(exist_ok=True)
    for split, n in (("train", 300), ("validation", 100)):
        path = split_dir / f"{split}.jsonl"
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in reviews(n)), encoding="utf-8")
        files[f"reviews_{split}"] = path

    entity_rows = []
    for _ in range(600):
        person, place, org = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(ORGS)
        org_words = org.split()
        pattern = rng.randrange(3)
        if pattern == 0:
            tokens = [person, "flew", "to", place, "with", *org_words]
            tags = ["B-PER", "O", "O", "B-LOC", "O", "B-ORG"] + ["I-ORG"] * (len(org_words) - 1)
        elif pattern == 1:
            tokens = [*org_words, "hired", person, "in", place]
            tags = ["B-ORG"] + ["I-ORG"] * (len(org_words) - 1) + ["O", "B-PER", "O", "B-LOC"]
        else:
            tokens = ["in", place, person, "met", "the", rng.choice(TOPICS[rng.choice(topics)]["nouns"])]
            tags = ["O", "B-LOC", "B-PER", "O", "O", "O"]
        entity_rows.append({"tokens": tokens, "tags": tags})
    files["entities"] = out_dir / "entities.jsonl"
    files["entities"].write_text("".join(json.dumps(r) + "\n" for r in entity_rows), encoding="utf-8")

    instruction_rows = []
    for _ in range(400):
        if rng.random() < 0.5:
            topic = rng.choice(topics)
            instruction_rows.append({"prompt": f"which topic is this: {_news(rng, topic)}?", "response": topic})
        else:
            positive = rng.random() < 0.5
            instruction_rows.append({"prompt": f"is this review positive or negative: {_review(rng, positive)}?",
                                     "response": "positive" if positive else "negative"})
    files["instructions"] = out_dir / "instructions.jsonl"
    files["instructions"].write_text("".join(json.dumps(r) + "\n" for r in instruction_rows), encoding="utf-8")
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
