"""Shipped resources: the demo data regenerates byte for byte and is learnable; the plan
reference is current; every shipped plan smoke-runs."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from engine.resources import plan_templates, resources_dir
from tests.engine.process.test_runs import cli_here  # `stagelab run` in this process

ROOT = Path(__file__).resolve().parents[1]
DATA = resources_dir() / "data"


def test_demo_data_regenerates_byte_for_byte(tmp_path):
    sys.path.insert(0, str(DATA))
    try:
        from generate_demo_data import generate
    finally:
        sys.path.pop(0)
    files = generate(tmp_path)
    assert len(files) == 9
    for path in files.values():
        shipped = DATA / path.relative_to(tmp_path)
        assert shipped.read_bytes() == path.read_bytes(), shipped


def test_a_checkout_that_was_never_installed_finds_its_own_resources():
    # As on a GPU machine given the checkout on PYTHONPATH (bench/gpu.sh): no site-packages
    # (-S), so no installed or editable `stagelab_resources` to find.
    code = "from engine.resources import resources_dir; print(resources_dir())"
    found = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(found) == ROOT / "resources"
    assert (Path(found) / "plans" / "demo.yaml").is_file()


def naive_bayes_accuracy(rows: list[tuple[str, str]]) -> tuple[float, float]:
    """Accuracy of bag-of-words Naive Bayes (80/20 split) and of the majority class."""
    cut = int(len(rows) * 0.8)
    train, test = rows[:cut], rows[cut:]
    priors = Counter(label for _, label in train)
    words: dict[str, Counter] = defaultdict(Counter)
    for text, label in train:
        words[label].update(text.split())
    vocab = {w for c in words.values() for w in c}

    def score(text: str, label: str) -> float:
        total = sum(words[label].values()) + len(vocab)
        return math.log(priors[label]) + sum(
            math.log((words[label][w] + 1) / total) for w in text.split()
        )

    hits = sum(max(priors, key=lambda lab: score(t, lab)) == label for t, label in test)
    majority = priors.most_common(1)[0][0]
    return hits / len(test), sum(label == majority for _, label in test) / len(test)


@pytest.mark.parametrize("name,chance", [("topics.csv", 0.35), ("reviews.csv", 0.6)])
def test_demo_labels_are_learnable_and_balanced(name, chance):
    rows = [(r["text"], r["label"]) for r in csv.DictReader(open(DATA / name, encoding="utf-8"))]
    accuracy, majority = naive_bayes_accuracy(rows)
    assert accuracy >= 0.75 and majority <= chance, (accuracy, majority)


def test_entity_tags_match_their_tokens():
    rows = [json.loads(line) for line in open(DATA / "entities.jsonl", encoding="utf-8")]
    with_entities = sum(any(t != "O" for t in row["tags"]) for row in rows)
    assert with_entities > 0.8 * len(rows)
    for row in rows:
        assert len(row["tokens"]) == len(row["tags"])
        for previous, tag in zip(["O"] + row["tags"][:-1], row["tags"], strict=True):
            # BIO: an inside tag continues an entity of the same type
            assert not tag.startswith("I-") or previous[2:] == tag[2:], row


def test_plan_reference_is_current():
    proc = subprocess.run([sys.executable, "packaging/plan_reference.py", "--check"], cwd=ROOT)
    assert proc.returncode == 0, (
        "docs/plan-format.md is stale: run python packaging/plan_reference.py"
    )
    # Every type a table links to has its section on the page.
    page = (ROOT / "docs" / "plan-format.md").read_text()
    sections = {title.lower() for title in re.findall(r"^## (\S+)$", page, re.M)}
    assert set(re.findall(r"\]\(#([a-z0-9]+)\)", page)) <= sections


@pytest.mark.slow
@pytest.mark.parametrize("path", plan_templates(), ids=lambda p: p.name)
def test_every_shipped_plan_smoke_runs(path, tmp_path):
    """The plan as shipped, cut to 3 steps per stage, runs to `finished`."""
    data = yaml.safe_load(path.read_text())
    for stage in data["stages"]:
        stage["max_steps"] = 3
        # The stage's data, or each joint member's: absolute paths, since the plan moves.
        members = [m for m in stage.get("members", []) if "data" in m]
        for holder in [stage] if "data" in stage else members:
            holder["data"]["path"] = str((path.parent / holder["data"]["path"]).resolve())
        stage.get("eval", {}).pop("every_steps", None)
        stage.get("regularization", {}).pop("early_stopping", None)
    small = tmp_path / path.name
    small.write_text(yaml.safe_dump(data))
    proc = cli_here(["--workspace", str(tmp_path / "ws"), "run", str(small)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "finished" in proc.stdout


def test_preference_pairs_have_a_right_and_a_different_wrong_answer():
    import json

    rows = [json.loads(line) for line in (DATA / "preferences.jsonl").read_text().splitlines()]
    answers = {}
    for line in (DATA / "instructions.jsonl").read_text().splitlines():
        row = json.loads(line)
        answers[row["prompt"]] = row["response"]
    assert len(rows) == 1000
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)
    assert all(r["chosen"] != r["rejected"] and r["rejected"].strip() for r in rows)
    # The chosen answer is the instruction set's answer wherever the prompts meet.
    shared = [r for r in rows if r["prompt"] in answers]
    assert all(answers[r["prompt"]] == r["chosen"] for r in shared)
