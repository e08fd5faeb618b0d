"""Parity figures of `stagelab export` (README, Export): one `stagelab run` of a small plan
on the shipped demo data (a bert-tiny sentiment classifier, a token tagger, a masked LM
and a llama-tiny causal LM with its byte-level BPE tokenizer), then each output exported
the way a person would, and the figures the export prints collected.

    python bench/export_parity.py                 # 60 steps a stage (CPU, a few minutes)
    python bench/export_parity.py --steps 200 --keep /tmp/export-bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "resources" / "data"
PLAN = """
name: export-parity
stages:
  - name: sentiment
    kind: train
    model: {{builtin: bert-tiny, vocab_size: 600}}
    data: {{path: {data}/reviews.csv, max_length: 48, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: {steps}
    optimizer: {{lr: 3.0e-3}}
  - name: tagger
    kind: train
    task: token_classification
    model: {{builtin: bert-tiny, vocab_size: 600}}
    data: {{path: {data}/entities.jsonl, text_column: tokens, label_column: tags, max_length: 32, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: {steps}
  - name: filler
    kind: pretrain
    objective: masked_lm
    model: {{builtin: bert-tiny, vocab_size: 600}}
    data: {{path: {data}/corpus.txt, format: text, max_length: 48, eval_ratio: 0.05}}
    batch_size: 16
    max_steps: {steps}
  - name: writer
    kind: pretrain
    objective: causal_lm
    model: {{builtin: llama-tiny, vocab_size: 600}}
    data: {{path: {data}/corpus.txt, format: text, max_length: 48, eval_ratio: 0.05}}
    batch_size: 16
    max_steps: {steps}
    optimizer: {{lr: 3.0e-3}}
"""
EXPORTS = [("sentiment", "onnx"), ("tagger", "onnx"), ("filler", "onnx"), ("writer", "gguf")]


def stagelab(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    cmd = [sys.executable, "-m", "engine.cli", "--workspace", str(workspace), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="work here and keep the run and exports")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="export-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    plan = root / "plan.yaml"
    plan.write_text(PLAN.format(data=DATA, steps=args.steps), encoding="utf-8")
    workspace = root / "ws"
    done = stagelab(workspace, "run", str(plan), "--no-cache")
    if done.returncode:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    run_id = json.loads(stagelab(workspace, "ls", "--json").stdout)["experiments"][0]["runs"][-1][
        "id"
    ]
    for stage, fmt in EXPORTS:
        out = root / f"{stage}-{fmt}"
        done = stagelab(workspace, "export", f"{run_id}:{stage}", "--format", fmt, str(out))
        said = [line for line in done.stdout.splitlines() if "max |logit difference|" in line]
        print(f"{stage} → {fmt}: exit {done.returncode}")
        for line in said or done.stderr.strip().splitlines()[-1:]:
            print(f"  {line}")
        sizes = {p.name: p.stat().st_size for p in out.glob("*.gguf")} if out.exists() else {}
        for name, size in sorted(sizes.items()):
            print(f"  {name}: {size / 1024:.0f} KiB")
        if done.returncode:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
