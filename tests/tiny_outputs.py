"""Four tiny stage outputs trained for real by one `stagelab run` on the shipped demo data
(CPU, a few steps each): a sentiment classifier, a token tagger, a causal LM and a masked
LM. Shared by the predict, playground and memory tests; train once per test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "resources" / "data"

PLAN = f"""
name: tiny-outputs
stages:
  - name: sentiment
    kind: train
    model: {{builtin: bert-tiny, vocab_size: 300}}
    data: {{path: {DATA / "reviews.csv"}, max_length: 24, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: 30
    optimizer: {{lr: 3.0e-3}}
  - name: tagger
    kind: train
    task: token_classification
    model: {{builtin: bert-tiny, vocab_size: 300}}
    data: {{path: {DATA / "entities.jsonl"}, text_column: tokens, label_column: tags, max_length: 24, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: 10
  - name: writer
    kind: pretrain
    objective: causal_lm
    model: {{builtin: gpt2-tiny, vocab_size: 300}}
    data: {{path: {DATA / "corpus.txt"}, format: text, max_length: 24, eval_ratio: 0.05}}
    batch_size: 16
    max_steps: 10
  - name: filler
    kind: pretrain
    objective: masked_lm
    model: {{builtin: bert-tiny, vocab_size: 300}}
    data: {{path: {DATA / "corpus.txt"}, format: text, max_length: 24, eval_ratio: 0.05}}
    batch_size: 16
    max_steps: 10
"""


@dataclass
class TinyOutputs:
    """The workspace, the run and each stage's output folder (by stage name)."""

    workspace: Path
    run_id: str
    folders: dict[str, Path]


def stagelab(*args: str, workspace: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--workspace", str(workspace), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def train_tiny_outputs(root: Path, steps: int | None = None) -> TinyOutputs:
    """Run the plan above in a workspace under `root` and return its outputs; `steps`
    trains every stage that long instead (the screenshots want readable answers)."""
    workspace = root / "ws"
    plan = root / "tiny.yaml"
    text = PLAN
    if steps is not None:
        text = text.replace("max_steps: 10", f"max_steps: {steps}")
        text = text.replace("max_steps: 30", f"max_steps: {steps}")
    plan.write_text(text, encoding="utf-8")
    done = stagelab("run", str(plan), "--no-cache", workspace=workspace)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = json.loads(stagelab("ls", "--json", workspace=workspace).stdout)
    run_id = runs["experiments"][0]["runs"][-1]["id"]
    shown = json.loads(stagelab("show", run_id, "--json", workspace=workspace).stdout)
    folders = {s["name"]: Path(s["output_dir"]) for s in shown["stages"]}
    return TinyOutputs(workspace, run_id, folders)
