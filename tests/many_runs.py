"""A workspace with many runs, written by bulk SQL inserts in a second (the engine would
take hours): experiments of RUNS_PER_EXPERIMENT runs sharing a plan, two stages each with
latest values and an evaluation series, tags and notes. Used by the search tests and by
bench/runs_table.py; every value follows from the run's index, so tests can count.

Run i (0-based): experiment i // 10, named "exp-<e>", plan lr = (e % 10 + 1) * 1e-4,
batch_size 16 or 32 (e even or odd); status failed if i % 7 == 0, else finished; tags
`baseline` if i % 10 == 0 and `sweep` if i % 3 == 0; note "note <i>"; final
eval/accuracy of stage 1 = (i % 100) / 100, its best 0.05 higher (at most 1); eval/loss in both stages.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from engine.store import Store, Workspace

RUNS_PER_EXPERIMENT = 10
PLAN = """version: 1
name: exp-{e}
stages:
  - name: pretrain
    kind: pretrain
    objective: masked_lm
    model: {{builtin: bert-tiny}}
    data: {{path: corpus.txt, format: text}}
    batch_size: {batch}
    optimizer: {{name: adamw, lr: 2.0e-3}}
  - name: cls
    kind: train
    task: sequence_classification
    model: {{from_stage: pretrain}}
    data: {{path: reviews.csv, text_column: text, label_column: label}}
    batch_size: {batch}
    optimizer: {{name: adamw, lr: {lr}}}
"""


def lr_of(experiment: int) -> float:
    return (experiment % 10 + 1) * 1e-4


def accuracy_of(i: int) -> float:
    return (i % 100) / 100


def build(root: Path, runs: int = 10_000) -> Path:
    """Create the workspace at `root` with `runs` runs; returns its database path."""
    workspace = Workspace.open(root)
    Store.open(workspace.db_path).close()  # the schema, by the migrations
    base = 1_700_000_000_000
    experiments, run_rows, stages, latest, chunks, tags = [], [], [], [], [], []
    for e in range((runs + RUNS_PER_EXPERIMENT - 1) // RUNS_PER_EXPERIMENT):
        plan = PLAN.format(e=e, batch=16 if e % 2 == 0 else 32, lr=f"{lr_of(e):.1e}")
        experiments.append((f"e{e:011d}", f"exp-{e}", plan, "/plans", "", base, base))
    for i in range(runs):
        e = i // RUNS_PER_EXPERIMENT
        run_id, created = f"r{i:011d}", base + i * 1000
        status = "failed" if i % 7 == 0 else "finished"
        run_rows.append(
            (
                run_id,
                f"e{e:011d}",
                i % RUNS_PER_EXPERIMENT + 1,
                status,
                experiments[e][2],
                "/plans",
                "cpu",
                f"/runs/{run_id}",
                created,
                created + 10,
                created + 60_000 + i,
                f"note {i}",
                None if i % 5 else "box",
            )
        )
        for idx, (name, kind) in enumerate((("pretrain", "pretrain"), ("cls", "train"))):
            stages.append((run_id, idx, name, kind, "finished", 100, 100))
        accuracy = accuracy_of(i)
        latest += [
            (run_id, 0, "eval/loss", 100, 2.0, created),
            (run_id, 1, "eval/loss", 100, 1.0 - accuracy / 2, created),
            (run_id, 1, "eval/accuracy", 100, accuracy, created),
            (run_id, 1, "train/loss", 100, 0.5, created),
            (run_id, 1, "eval/f1", 100, accuracy, created),
        ]
        # What a real run also records, so a read by key has as many rows to pass over.
        latest += [
            (run_id, idx, key, 100, 1.0, created)
            for idx in (0, 1)
            for key in ("train/lr", "train/grad_norm", "perf/tokens_per_s", "perf/samples_per_s")
        ]
        latest.append((run_id, 0, "train/loss", 100, 2.5, created))
        steps = np.arange(10, 110, 10, dtype="<i8")
        values = np.full(10, accuracy * 0.9, dtype="<f8")
        values[4] = min(accuracy + 0.05, 1.0)  # the best, mid-run
        values[-1] = accuracy  # the final value, as latest_metrics has it
        chunks.append(
            (
                run_id,
                1,
                "eval/accuracy",
                10,
                100,
                10,
                1,
                10,
                steps.tobytes(),
                values.tobytes(),
                steps.tobytes(),
                steps.tobytes(),
            )
        )
        tags += [(run_id, "baseline")] * (i % 10 == 0) + [(run_id, "sweep")] * (i % 3 == 0)
    db = sqlite3.connect(workspace.db_path)
    with db:
        db.executemany(
            "INSERT INTO experiments (id, name, plan_text, plan_dir, notes, created_ms, "
            "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            experiments,
        )
        db.executemany(
            "INSERT INTO runs (id, experiment_id, number, status, plan_text, plan_dir, gpus, "
            "run_dir, created_ms, started_ms, ended_ms, note, target, resume_count, use_cache, "
            "nproc, placement) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, 1, '{}')",
            run_rows,
        )
        db.executemany(
            "INSERT INTO stages (run_id, idx, name, kind, status, steps_done, total_steps) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            stages,
        )
        db.executemany(
            "INSERT INTO latest_metrics (run_id, stage_idx, key, step, value, wall_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            latest,
        )
        db.executemany(
            "INSERT INTO metric_chunks (run_id, stage_idx, key, first_step, last_step, n, "
            "min_seq, max_seq, steps, vals, seqs, walls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            chunks,
        )
        db.executemany("INSERT INTO run_tags (run_id, tag) VALUES (?, ?)", tags)
    db.close()
    return workspace.db_path
