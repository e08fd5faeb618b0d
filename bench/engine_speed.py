"""Steps per second of the Stagelab engine on one masked-LM or causal-LM stage, measured
side by side in one process against (a) a bare PyTorch loop and (b) Hugging Face `Trainer`,
on the same model, data, batch size and optimizer (AdamW, fused on CUDA and CPU). The engine runs
with its store writer on (metric points batched into a real SQLite database) and a live
listener attached.

    python bench/engine_speed.py                      # CPU: bert-tiny, 60 steps, 5 rounds
    # GPU, the issue's two reference points (full-length rows; --compile adds compiled
    # bare-loop and Trainer rounds, timed after their warm-up steps):
    python bench/engine_speed.py --builtin bert-base --precision bf16 --batch 64 \
        --max-length 128 --pack --steps 100 --compile
    python bench/engine_speed.py --builtin gpt2-base --objective causal_lm --precision bf16 \
        --batch 16 --max-length 1024 --pack --steps 50 --compile

Prints the median steps/s and samples/s of each, the ratios engine ÷ bare and engine ÷
Trainer (each the median of the rounds' own ratios: a round's three loops run back to back,
so load that drifts between rounds cancels); `--json` prints them as one JSON object
(`engine_vs_bare`, `engine_vs_trainer`, with --compile `engine_compiled_vs_bare_compiled`), and with --pack the model FLOPs utilisation (6·parameters·tokens/s over the GPU's
peak, `--peak-tflops`, default from the device name). Compiled rounds (the engine's
`compile: true`, `torch.compile` of the bare loop, Trainer's `torch_compile`) are timed
after their first `WARMUP` steps, so compilation is left out.
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

from engine.recipes import SingleModelRecipe  # noqa: E402
from engine.recipes.common import seed_everything  # noqa: E402
from engine.resources import resources_dir  # noqa: E402
from engine.runtime.context import Control, StageContext  # noqa: E402
from engine.runtime.recorder import Recorder  # noqa: E402
from engine.spec import load_plan_text  # noqa: E402
from engine.store import Store, Workspace, queries  # noqa: E402
from engine.train.batches import BatchStream  # noqa: E402
from engine.train.feed import batch_workers  # noqa: E402
from engine.train.loop import train_stage  # noqa: E402

PLAN = """
name: bench
stages:
  - name: mlm
    kind: pretrain
    objective: {objective}
    model: {{builtin: {builtin}, vocab_size: 2000}}
    data: {{path: {corpus}, format: text, max_length: {max_length}, eval_ratio: 0}}
    max_steps: {steps}
    batch_size: {batch}
    precision: {precision}
    log_every_steps: 10
    optimizer: {{name: adamw, lr: 5.0e-4}}
    schedule: {{name: linear}}
"""


# Dense bf16 peak of the GPUs the issue names (TFLOP/s), for the MFU figure.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}


def make_corpus(args: argparse.Namespace, root: Path) -> Path:
    """The demo corpus; with --pack its lines joined into rows longer than max_length, so
    every batch is batch × max_length tokens (MFU needs a known token count)."""
    corpus = resources_dir() / "data" / "corpus.txt"
    if not args.pack:
        return corpus
    words = corpus.read_text(encoding="utf-8").split()
    per_row = args.max_length * 2  # words: more than enough tokens after truncation
    rows = [" ".join(words[i : i + per_row]) for i in range(0, len(words) - per_row, per_row)]
    while len(rows) < args.batch * 8:
        rows += rows
    packed = root / "packed.txt"
    packed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return packed


def make_context(args: argparse.Namespace, root: Path) -> StageContext:
    corpus = make_corpus(args, root)
    plan = load_plan_text(
        PLAN.format(
            objective=args.objective,
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


def bench_engine(ctx: StageContext, recipe: SingleModelRecipe, compiled: bool = False) -> float:
    """The engine's loop as a stage runs it (store writer, live listener). Compiled: the
    stage's `compile: true`, timed from the first log after `WARMUP` steps."""
    seed_everything(0)
    recipe.model = recipe.model.__class__(recipe.model.config)
    stage, steps = ctx.stage, ctx.stage.max_steps
    warmup = WARMUP if compiled else 0
    stage.compile, stage.max_steps = compiled, steps + warmup
    marks: dict[str, float] = {}

    def clock(kind: str, payload: dict) -> None:
        # The loop reports its steps at every log (every 10 steps), on the training thread.
        if kind == "stage" and payload.get("steps_done", -1) >= warmup and "start" not in marks:
            _sync(ctx.device)
            marks["start"] = time.perf_counter()

    ctx.recorder.listeners.append(clock)
    try:
        train_stage(ctx, recipe)
        _sync(ctx.device)
        elapsed = time.perf_counter() - marks["start"]
    finally:
        ctx.recorder.listeners.remove(clock)
        stage.compile, stage.max_steps = False, steps
    ctx.recorder.flush()
    return steps / elapsed


def bench_bare(ctx: StageContext, recipe: SingleModelRecipe, compiled: bool = False) -> float:
    """The loop a careful person writes by hand: same batches, no logging, no store.
    Compiled: `torch.compile`d, timed after `WARMUP` steps (compilation left out)."""
    seed_everything(0)
    model = recipe.model.__class__(recipe.model.config).to(ctx.device)
    model.train()
    if compiled:
        model = torch.compile(model)
    fused = ctx.device.type == "cuda"
    # The engine's optimizer is fused on the CPU too (engine/train/optim.py).
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, fused=ctx.device.type in ("cuda", "cpu"))
    stream = BatchStream(recipe.train_rows, ctx.stage.batch_size, 0, recipe.pad_id, [0, 0])
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=ctx.stage.precision == "bf16" and fused
    )
    warmup = WARMUP if compiled else 0
    start = time.perf_counter()
    for step in range(ctx.stage.max_steps + warmup):
        if step == warmup:
            _sync(ctx.device)
            start = time.perf_counter()
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


def bench_trainer(
    ctx: StageContext, recipe: SingleModelRecipe, out: Path, compiled: bool = False
) -> float:
    """HF `Trainer` on the same rows and collation; compiled: `torch_compile`, timed after
    `WARMUP` steps by a callback."""
    from transformers import (
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )
    from transformers.trainer_callback import PrinterCallback

    warmup = WARMUP if compiled else 0
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == warmup:
                _sync(ctx.device)
                marks["start"] = time.perf_counter()

    seed_everything(0)
    model = recipe.model.__class__(recipe.model.config)
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=ctx.stage.max_steps + warmup,
        torch_compile=compiled,
        optim="adamw_torch_fused" if ctx.device.type in ("cuda", "cpu") else "adamw_torch",
        per_device_train_batch_size=ctx.stage.batch_size,
        learning_rate=5e-4,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        # As many batch workers as the engine uses (2 on a GPU, none on the CPU).
        dataloader_num_workers=batch_workers(ctx.stage, ctx.device),
        dataloader_pin_memory=ctx.device.type == "cuda",
        bf16=ctx.stage.precision == "bf16",
        use_cpu=ctx.device.type == "cpu",
        disable_tqdm=True,
        max_grad_norm=1.0,
    )
    masked = ctx.stage.objective == "masked_lm"
    collator = DataCollatorForLanguageModeling(recipe.tokenizer, mlm=masked, mlm_probability=0.15)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=recipe.train_rows,
        data_collator=collator,
        callbacks=[Clock()],
    )
    trainer.remove_callback(PrinterCallback)  # it still logs every 10 steps, just silently
    marks["start"] = time.perf_counter()
    trainer.train()
    _sync(ctx.device)
    return ctx.stage.max_steps / (time.perf_counter() - marks["start"])


WARMUP = 10  # steps a compiled loop takes before it is timed (the engine logs every 10)


def round_ratios(results: dict[str, list[float]]) -> dict[str, float]:
    """Each ratio as the median of the rounds' own ratios (interleaved rounds)."""
    pairs = {
        "engine_vs_bare": ("engine", "bare"),
        "engine_vs_trainer": ("engine", "trainer"),
        "engine_compiled_vs_bare_compiled": ("engine compiled", "bare compiled"),
        "engine_compiled_vs_trainer_compiled": ("engine compiled", "trainer compiled"),
        "engine_compiled_vs_trainer": ("engine compiled", "trainer"),
    }
    return {
        name: statistics.median(a / b for a, b in zip(results[x], results[y], strict=True))
        for name, (x, y) in pairs.items()
        if x in results and y in results
    }


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


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
    parser.add_argument("--objective", default="masked_lm", choices=["masked_lm", "causal_lm"])
    parser.add_argument("--pack", action="store_true", help="rows of exactly max_length tokens")
    parser.add_argument("--compile", action="store_true", help="add compiled bare/Trainer rounds")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, for MFU")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--no-compiled-trainer", action="store_true", help="with --compile: no Trainer rounds"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ctx = make_context(args, root)
        recipe = SingleModelRecipe(ctx)
        recipe.setup()
        parameters = sum(p.numel() for p in recipe.model.parameters())
        results: dict[str, list[float]] = {"engine": [], "bare": [], "trainer": []}
        if args.compile:
            results |= {"engine compiled": [], "bare compiled": []}
            if not args.no_compiled_trainer:
                results["trainer compiled"] = []
        for _ in range(args.rounds):  # interleaved, so drift hits all alike
            results["engine"].append(bench_engine(ctx, recipe))
            results["bare"].append(bench_bare(ctx, recipe))
            results["trainer"].append(bench_trainer(ctx, recipe, root / "trainer"))
            if args.compile:
                results["engine compiled"].append(bench_engine(ctx, recipe, compiled=True))
                results["bare compiled"].append(bench_bare(ctx, recipe, compiled=True))
                if not args.no_compiled_trainer:
                    results["trainer compiled"].append(
                        bench_trainer(ctx, recipe, root / "trainer", compiled=True)
                    )
            # Each round as it ends (stderr): a long run on a loaded machine shows progress.
            print({k: round(v[-1], 3) for k, v in results.items() if v}, file=sys.stderr)
        ctx.recorder.close()
        points = len(queries.export_metrics_rows(ctx.store, ctx.run_id) or [])
    med = {k: statistics.median(v) for k, v in results.items()}
    ratios = round_ratios(results)
    if args.json:
        print(
            json.dumps(
                {
                    **{k: round(v, 4) for k, v in ratios.items()},
                    "steps_per_s": {k: round(v, 3) for k, v in med.items()},
                    "rounds": {k: [round(x, 3) for x in v] for k, v in results.items()},
                    "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                    "setup": f"{args.builtin} {args.objective}, batch {args.batch}, "
                    f"seq {'=' if args.pack else '≤'} {args.max_length}, {args.steps} steps × "
                    f"{args.rounds} rounds, {args.precision}, {args.device}",
                }
            )
        )
        return 0
    peak = peak_tflops(torch.device(args.device), args.peak_tflops)
    print(
        f"device {args.device}, {args.builtin} {args.objective} ({parameters / 1e6:.1f} M "
        f"parameters), batch {args.batch}, seq {'=' if args.pack else '≤'} {args.max_length}, "
        f"{args.steps} steps × {args.rounds} rounds, precision {args.precision}"
    )
    for name, value in med.items():
        samples = value * args.batch
        line = f"  {name:16s} {value:8.2f} steps/s {samples:9.1f} samples/s"
        if args.pack and peak:
            # 6·N FLOPs per token (forward + backward), attention's share left out.
            mfu = 6 * parameters * samples * args.max_length / (peak * 1e12)
            line += f"   MFU {mfu:6.1%}"
        print(f"{line}   (rounds: {', '.join(f'{v:.2f}' for v in results[name])})")
    print(f"  engine ÷ bare PyTorch loop : {ratios['engine_vs_bare']:.3f}")
    print(f"  engine ÷ HF Trainer        : {ratios['engine_vs_trainer']:.3f}")
    if args.compile:
        print(
            f"  compiled engine ÷ compiled bare  : {ratios['engine_compiled_vs_bare_compiled']:.3f}"
        )
        if "engine_compiled_vs_trainer_compiled" in ratios:
            ratio = ratios["engine_compiled_vs_trainer_compiled"]
            print(f"  compiled engine ÷ compiled Trainer : {ratio:.3f}")
        print(f"  compiled engine ÷ eager Trainer  : {ratios['engine_compiled_vs_trainer']:.3f}")
    print(f"  load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"  metric points stored by the engine during the bench: {points}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
