"""Steps per second of the Stagelab engine on one masked-LM stage, measured side by side in
one process against (a) a bare PyTorch loop and (b) Hugging Face `Trainer`, on the same
model, data, batch size and optimizer. The engine runs with its store writer on (metric
points batched into a real SQLite database) and a live listener attached.

    python bench/engine_speed.py                      # CPU: bert-tiny, 60 steps, 5 rounds
    python bench/engine_speed.py --builtin bert-base --precision bf16 --steps 100   # GPU

Prints the median steps/s of each and the ratios engine ÷ bare and engine ÷ Trainer.
"""

from __future__ import annotations

import argparse
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

from engine.process.context import Control, StageContext  # noqa: E402
from engine.process.recorder import Recorder  # noqa: E402
from engine.recipes import PretrainRecipe  # noqa: E402
from engine.recipes.common import seed_everything  # noqa: E402
from engine.resources import resources_dir  # noqa: E402
from engine.spec import load_plan_text  # noqa: E402
from engine.store import Store, Workspace, queries  # noqa: E402
from engine.train.batches import BatchStream  # noqa: E402
from engine.train.loop import train_stage  # noqa: E402

PLAN = """
name: bench
stages:
  - name: mlm
    kind: pretrain
    model: {{builtin: {builtin}, vocab_size: 2000}}
    data: {{path: {corpus}, format: text, max_length: {max_length}, eval_ratio: 0}}
    max_steps: {steps}
    batch_size: {batch}
    precision: {precision}
    log_every_steps: 10
    optimizer: {{name: adamw, lr: 5.0e-4}}
    schedule: {{name: linear}}
"""


def make_context(args: argparse.Namespace, root: Path) -> StageContext:
    corpus = resources_dir() / "data" / "corpus.txt"
    plan = load_plan_text(
        PLAN.format(
            builtin=args.builtin,
            corpus=corpus,
            steps=args.steps,
            batch=args.batch,
            precision=args.precision,
            max_length=args.max_length,
        )
    )
    workspace = Workspace.open(root)
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "bench", "", str(root))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="0", runs_dir=workspace.runs_dir
    )
    recorder = Recorder(store, run_id)
    received = []
    recorder.listeners.append(lambda kind, payload: received.append(kind))
    recorder.start()
    device = torch.device(args.device)
    queries.upsert_stage(store, run_id, 0, name="mlm", kind="pretrain", status="running")
    return StageContext(
        index=0,
        plan=plan,
        plan_dir=root,
        run_id=run_id,
        run_dir=workspace.run_dir(run_id),
        device=device,
        store=store,
        recorder=recorder,
        control=Control(),
        cache_dir=root / "cache",
    )


def bench_engine(ctx: StageContext, recipe: PretrainRecipe) -> float:
    seed_everything(0)
    recipe.model = recipe.model.__class__(recipe.model.config)
    start = time.perf_counter()
    train_stage(ctx, recipe)
    _sync(ctx.device)
    elapsed = time.perf_counter() - start
    ctx.recorder.flush()
    return ctx.stage.max_steps / elapsed


def bench_bare(ctx: StageContext, recipe: PretrainRecipe) -> float:
    """The loop a careful person writes by hand: same batches, no logging, no store."""
    seed_everything(0)
    model = recipe.model.__class__(recipe.model.config).to(ctx.device)
    model.train()
    fused = ctx.device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, fused=fused or None)
    stream = BatchStream(recipe.train_rows, ctx.stage.batch_size, 0, recipe.pad_id, [0, 0])
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=ctx.stage.precision == "bf16" and fused
    )
    start = time.perf_counter()
    for step in range(ctx.stage.max_steps):
        batch = recipe.prepare(stream.next(), seed=0, micro_step=step, train=True)
        batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(ctx.device)
    return ctx.stage.max_steps / (time.perf_counter() - start)


def bench_trainer(ctx: StageContext, recipe: PretrainRecipe, out: Path) -> float:
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    seed_everything(0)
    model = recipe.model.__class__(recipe.model.config)
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=ctx.stage.max_steps,
        per_device_train_batch_size=ctx.stage.batch_size,
        learning_rate=5e-4,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        bf16=ctx.stage.precision == "bf16",
        use_cpu=ctx.device.type == "cpu",
        disable_tqdm=True,
        max_grad_norm=1.0,
    )
    collator = DataCollatorForLanguageModeling(recipe.tokenizer, mlm_probability=0.15)
    trainer = Trainer(
        model=model, args=args, train_dataset=recipe.train_rows, data_collator=collator
    )
    trainer.remove_callback(PrinterCallback)  # it still logs every 10 steps, just silently
    start = time.perf_counter()
    trainer.train()
    _sync(ctx.device)
    return ctx.stage.max_steps / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builtin", default="bert-tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ctx = make_context(args, root)
        recipe = PretrainRecipe(ctx)
        recipe.setup()
        results: dict[str, list[float]] = {"engine": [], "bare": [], "trainer": []}
        for _ in range(args.rounds):  # interleaved, so drift hits all three alike
            results["engine"].append(bench_engine(ctx, recipe))
            results["bare"].append(bench_bare(ctx, recipe))
            results["trainer"].append(bench_trainer(ctx, recipe, root / "trainer"))
        ctx.recorder.close()
        points = len(queries.export_metrics_rows(ctx.store, ctx.run_id) or [])
    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"device {args.device}, {args.builtin}, batch {args.batch}, seq ≤ {args.max_length}, "
        f"{args.steps} steps × {args.rounds} rounds, precision {args.precision}"
    )
    for name, value in med.items():
        print(
            f"  {name:8s} {value:8.2f} steps/s   (rounds: {', '.join(f'{v:.2f}' for v in results[name])})"
        )
    print(f"  engine ÷ bare PyTorch loop : {med['engine'] / med['bare']:.3f}")
    print(f"  engine ÷ HF Trainer        : {med['engine'] / med['trainer']:.3f}")
    print(f"  metric points stored by the engine during the bench: {points}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
