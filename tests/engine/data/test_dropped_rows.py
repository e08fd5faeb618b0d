"""Rows the engine leaves out (blank texts, rows without a label) are the rows the LR
preview leaves out: the preview's step count equals the steps a real stage trains."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

from app.model.lr_plan import plan_curve

SHORT = ["good", "bad", "a day", "the lab", "fine trip", "dull", "team", "room"]


@pytest.fixture(scope="module")
def ragged(data_dir):
    """Data files with blank lines, blank cells, missing labels and one-word texts."""
    with open(data_dir / "ragged.txt", "w") as fh:
        for i in range(70):
            fh.write(["", "   ", SHORT[i % 8], " ".join(SHORT[:3])][i % 4] + "\n")
    with open(data_dir / "ragged.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(90):
            text = ["", "  ", "NA", SHORT[i % 8], "None", "good day"][i % 6]
            label = ["pos", "neg", ""][i % 3] if i % 5 else ""
            writer.writerow([text, label])
    with open(data_dir / "ragged.jsonl", "w") as fh:
        for i in range(60):
            tokens = [] if i % 4 == 0 else ["anna", "went"][: 1 + i % 2]
            tags = None if i % 7 == 0 else ["B-PER", "O"][: len(tokens)]
            fh.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")
    return data_dir


CASES = {
    "masked_lm": """
  - name: s
    kind: pretrain
    objective: masked_lm
    model: {builtin: bert-tiny, vocab_size: 120}
    data: {path: ragged.txt, max_length: 16, eval_ratio: 0.2}
""",
    "causal_lm": """
  - name: s
    kind: pretrain
    objective: causal_lm
    model: {builtin: gpt2-tiny, vocab_size: 300}
    data: {path: ragged.txt, max_length: 16, eval_ratio: 0.2}
""",
    "sequence_classification": """
  - name: s
    kind: train
    model: {builtin: bert-tiny, vocab_size: 120}
    data: {path: ragged.csv, max_length: 16, eval_ratio: 0.25}
    eval: {metrics: [loss, accuracy, f1]}
""",
    "token_classification": """
  - name: s
    kind: train
    task: token_classification
    model: {builtin: bert-tiny, vocab_size: 120}
    data: {path: ragged.jsonl, text_column: tokens, label_column: tags, eval_ratio: 0.2}
""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_preview_steps_equal_the_steps_the_engine_trains(train_stage_of, ragged, case):
    plan_text = "name: ragged\nstages:" + CASES[case] + "    batch_size: 3\n    epochs: 2\n"
    stages = yaml.safe_load(plan_text)["stages"]
    (curve,) = plan_curve(stages, ragged)
    assert curve.estimate == ""
    result = train_stage_of(plan_text)
    trained = sorted(result.series("train/lr"))
    assert trained == list(range(1, len(trained) + 1))
    assert curve.steps == len(trained)
    # Blank rows were left out and said so; what is left trains without NaN.
    dropped = result.events("data")
    assert dropped and sum(e.data["dropped"] for e in dropped) > 0
    assert all(math.isfinite(v) for v in result.series("train/loss").values())
    assert result.series("eval/loss")
    assert all(math.isfinite(v) for v in result.series("eval/loss").values())
