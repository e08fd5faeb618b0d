"""A workspace with a run and a clone whose first stage came from the stage cache, built
with the store's own API (no training): what the monitor, compare and `stagelab show`
read for reused stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.store import Store, Workspace, queries

PLAN = """name: tiny
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 16}
    batch_size: 8
    max_steps: 12
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: reviews.csv, max_length: 16}
    batch_size: 8
    max_steps: 20
    eval: {every_steps: 10}
    optimizer: {lr: 0.001}
"""
# The clone trains its classifier longer and gentler, and adds two stages.
CLONE_PLAN = (
    PLAN.replace("max_steps: 20", "max_steps: 30").replace("lr: 0.001", "lr: 0.0003")
    + """  - name: vote
    kind: ensemble
    members: [{from_stage: cls}, {from_stage: mlm}]
  - name: polish
    kind: train
    model: {from_stage: cls}
    data: {path: reviews.csv, max_length: 16}
    max_steps: 10
"""
)


@dataclass
class ReusedRuns:
    store: Store
    source: str  # run 1 of 'tiny': trained mlm (12 steps) and cls (20 steps)
    clone: str  # run 1 of 'tiny (clone)': mlm reused, cls 30 steps, vote, polish pending


def mlm_loss(step: int) -> float:
    return 6.0 - 0.25 * step


def reused_runs(root: Path) -> ReusedRuns:
    ws = Workspace.open(root)
    store = Store.open(ws.db_path)
    source_exp = queries.create_experiment(store, "tiny", PLAN, str(root))
    source = queries.create_run(
        store, source_exp, plan_text=PLAN, plan_dir=str(root), gpus="cpu", runs_dir=ws.runs_dir
    )
    seq = 0

    def points(run: str, stage: int, steps: int, loss) -> None:
        nonlocal seq
        rows = []
        for step in range(1, steps + 1):
            seq += 1
            rows.append((stage, "train/loss", step, loss(step), step, seq))
        for step in (steps // 2, steps):
            seq += 1
            rows.append((stage, "eval/accuracy", step, 0.5 + step / 100, step, seq))
        queries.add_metrics(store, run, rows)

    for idx, (name, kind, steps, start) in enumerate(
        (("mlm", "pretrain", 12, 0), ("cls", "train", 20, 12))
    ):
        queries.upsert_stage(
            store,
            source,
            idx,
            name=name,
            kind=kind,
            status="finished",
            total_steps=steps,
            steps_done=steps,
            global_step_start=start,
            output_dir=str(root / "runs" / source / name),
        )
    points(source, 0, 12, mlm_loss)
    points(source, 1, 20, lambda step: 1.0 - step / 40)
    queries.set_run_status(store, source, "finished")

    clone_exp = queries.create_experiment(
        store, "tiny (clone)", CLONE_PLAN, str(root), parent_id=source_exp
    )
    clone = queries.create_run(
        store,
        clone_exp,
        plan_text=CLONE_PLAN,
        plan_dir=str(root),
        gpus="cpu",
        runs_dir=ws.runs_dir,
    )
    queries.upsert_stage(
        store,
        clone,
        0,
        name="mlm",
        kind="pretrain",
        status="reused",
        total_steps=12,
        steps_done=12,
        global_step_start=0,
        output_dir=str(root / "runs" / source / "mlm"),
        reused_run_id=source,
        reused_stage_idx=0,
    )
    queries.upsert_stage(
        store,
        clone,
        1,
        name="cls",
        kind="train",
        status="finished",
        total_steps=30,
        steps_done=30,
        global_step_start=12,
    )
    # An ensemble evaluates (no steps); the last stage never started (the run was stopped).
    queries.upsert_stage(
        store, clone, 2, name="vote", kind="ensemble", status="finished", global_step_start=42
    )
    queries.upsert_stage(store, clone, 3, name="polish", kind="train", status="pending")
    points(clone, 1, 30, lambda step: 1.0 - step / 70)
    queries.set_run_status(store, clone, "stopped")
    return ReusedRuns(store, source, clone)
