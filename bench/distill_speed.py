"""Cost of a distillation step of the Stagelab engine against what it must at least do: one
plain training step of the student plus one forward of the teacher, measured side by side
in one process on the same models, batches and optimizer.

    python bench/distill_speed.py                     # CPU: bert-mini teacher → bert-tiny
    python bench/distill_speed.py --teacher bert-base --student bert-small \\
        --precision bf16 --steps 100                  # GPU (the goal: ratio ≤ 1.5)
    python bench/distill_speed.py --json              # the figures as one JSON object

The engine's step runs the whole loop (store writer on, KD loss and its parts, clipping,
the teacher as a frozen module under no_grad and autocast). Prints the median steps/s and
the ratio  engine distill step ÷ (student train step + teacher forward).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from engine.recipes import DistillRecipe, SingleModelRecipe  # noqa: E402
from engine.recipes.common import seed_everything  # noqa: E402
from engine.resources import resources_dir  # noqa: E402
from engine.runtime.context import Control, StageContext  # noqa: E402
from engine.runtime.recorder import Recorder  # noqa: E402
from engine.spec import load_plan_text  # noqa: E402
from engine.store import Store, Workspace, queries  # noqa: E402
from engine.train.batches import BatchStream  # noqa: E402
from engine.train.loop import train_stage  # noqa: E402

PLAN = """
name: bench
stages:
  - name: teacher
    kind: train
    model: {{builtin: {teacher}, vocab_size: 2000}}
    data: {{path: {reviews}, max_length: {max_length}, eval_ratio: 0}}
    max_steps: 1
    batch_size: {batch}
  - name: student
    kind: distill
    teacher: {{from_stage: teacher}}
    model: {{builtin: {student}}}
    data: {{path: {reviews}, max_length: {max_length}, eval_ratio: 0}}
    alpha: 0.5
    temperature: 2.0
    max_steps: {steps}
    batch_size: {batch}
    precision: {precision}
    log_every_steps: 10
    optimizer: {{name: adamw, lr: 5.0e-4}}
"""


def make_context(args: argparse.Namespace, root: Path, index: int, outputs: dict) -> StageContext:
    reviews = resources_dir() / "data" / "reviews.csv"
    plan = load_plan_text(
        PLAN.format(
            teacher=args.teacher,
            student=args.student,
            reviews=reviews,
            steps=args.steps,
            batch=args.batch,
            precision=args.precision,
            max_length=args.max_length,
        )
    )
    workspace = Workspace.open(root)
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, f"bench{index}", "", str(root))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="0", runs_dir=workspace.runs_dir
    )
    recorder = Recorder(store, run_id)
    recorder.start()
    for i, stage in enumerate(plan.stages):
        queries.upsert_stage(store, run_id, i, name=stage.name, kind=stage.kind, status="running")
    return StageContext(
        index=index,
        plan=plan,
        plan_dir=root,
        run_id=run_id,
        run_dir=workspace.run_dir(run_id),
        device=torch.device(args.device),
        store=store,
        recorder=recorder,
        control=Control(),
        cache_dir=root / "cache",
        outputs=outputs,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(ctx: StageContext):
    on = ctx.device.type == "cuda" and ctx.stage.precision in ("bf16", "fp16")
    dtype = torch.bfloat16 if ctx.stage.precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype, enabled=on)


def bench_engine(ctx: StageContext, recipe: DistillRecipe) -> float:
    seed_everything(0)
    recipe.model = recipe.model.__class__(recipe.model.config)
    start = time.perf_counter()
    train_stage(ctx, recipe)
    _sync(ctx.device)
    return ctx.stage.max_steps / (time.perf_counter() - start)


def _stream(ctx: StageContext, recipe: DistillRecipe) -> BatchStream:
    return BatchStream(recipe.train_rows, ctx.stage.batch_size, 0, recipe.pad_id, [0, 0])


def bench_student(ctx: StageContext, recipe: DistillRecipe) -> float:
    """A plain training step of the student alone: forward, backward, clip, AdamW."""
    seed_everything(0)
    model = recipe.model.__class__(recipe.model.config).to(ctx.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, fused=ctx.device.type == "cuda" or None)
    stream = _stream(ctx, recipe)
    start = time.perf_counter()
    for _ in range(ctx.stage.max_steps):
        batch = {k: v.to(ctx.device, non_blocking=True) for k, v in stream.next().items()}
        with _autocast(ctx):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(ctx.device)
    return ctx.stage.max_steps / (time.perf_counter() - start)


def bench_teacher(ctx: StageContext, recipe: DistillRecipe) -> float:
    """One teacher forward per batch, without gradients, under autocast."""
    teacher = recipe.teacher.to(ctx.device).eval()
    stream = _stream(ctx, recipe)
    start = time.perf_counter()
    for _ in range(ctx.stage.max_steps):
        batch = {k: v.to(ctx.device, non_blocking=True) for k, v in stream.next().items()}
        batch.pop("labels")
        with torch.no_grad(), _autocast(ctx):
            teacher(**batch)
    _sync(ctx.device)
    return ctx.stage.max_steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", default="bert-mini")
    parser.add_argument("--student", default="bert-tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        first = make_context(args, root, 0, {})
        teacher = SingleModelRecipe(first)
        teacher.setup()
        train_stage(first, teacher)
        out = teacher.save()[0]
        first.recorder.close()
        ctx = make_context(args, root, 1, {"teacher": out})
        recipe = DistillRecipe(ctx)
        recipe.setup()
        results: dict[str, list[float]] = {"distill": [], "student": [], "teacher": []}
        for _ in range(args.rounds):  # interleaved, so drift hits all three alike
            results["distill"].append(bench_engine(ctx, recipe))
            results["student"].append(bench_student(ctx, recipe))
            results["teacher"].append(bench_teacher(ctx, recipe))
        ctx.recorder.close()
    med = {k: statistics.median(v) for k, v in results.items()}
    budget = 1 / med["student"] + 1 / med["teacher"]  # seconds per step, both together
    if args.json:  # bench/gpu_figures.py reads this
        print(
            json.dumps(
                {
                    "device": args.device,
                    "teacher": args.teacher,
                    "student": args.student,
                    "batch": args.batch,
                    "max_length": args.max_length,
                    "precision": args.precision,
                    "per_s": med,
                    "rounds": results,
                    "distill_vs_student_and_teacher": (1 / med["distill"]) / budget,
                }
            )
        )
        return 0
    print(
        f"device {args.device}, teacher {args.teacher} → student {args.student}, batch "
        f"{args.batch}, seq ≤ {args.max_length}, {args.steps} steps × {args.rounds} rounds, "
        f"precision {args.precision}"
    )
    for name, label in (
        ("distill", "engine distill step"),
        ("student", "student train step"),
        ("teacher", "teacher forward"),
    ):
        rounds = ", ".join(f"{v:.2f}" for v in results[name])
        print(f"  {label:20s} {med[name]:8.2f} /s   (rounds: {rounds})")
    print(f"  distill ÷ (student step + teacher forward): {(1 / med['distill']) / budget:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
