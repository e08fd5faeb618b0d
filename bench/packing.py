"""Real (non-padding) tokens per second of the engine with `packing: true` ÷ without
(issue 32, item 2), on the demo plan's two language-model workloads, side by side in one
process: instruction tuning on resources/data/instructions.jsonl and causal-LM pretraining
on the demo corpus (resources/plans/llm.yaml's model, lengths and batch sizes).

    python bench/packing.py                 # CPU: llama-tiny, 3 interleaved rounds
    python bench/packing.py --device cuda --builtin llama-small --steps 100

Each round trains a fresh model for `--steps` steps unpacked, then packed (the order
alternates between rounds), through the engine's own loop (`train_stage`), and counts the
real tokens of the batches it drew; the figure is the median of the rounds' ratios. It
also prints the loss per token of the same rows unpacked and packed (one forward, same
weights) and their difference, and the machine's load before and after.
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

import datasets  # noqa: E402
import torch  # noqa: E402

from engine.recipes import SingleModelRecipe  # noqa: E402
from engine.recipes.common import seed_everything  # noqa: E402
from engine.recipes.heads import count_labelled, head_loss  # noqa: E402
from engine.resources import resources_dir  # noqa: E402
from engine.runtime.context import Control, StageContext  # noqa: E402
from engine.runtime.recorder import Recorder  # noqa: E402
from engine.spec import load_plan_text  # noqa: E402
from engine.store import Store, Workspace, queries  # noqa: E402
from engine.train.batches import BatchStream  # noqa: E402
from engine.train.loop import train_stage  # noqa: E402
from engine.train.packing import model_inputs, pack_rows  # noqa: E402

DATA = resources_dir() / "data"
# The demo plan's (resources/plans/llm.yaml) data, lengths and batch sizes.
WORKLOADS = {
    "sft": (
        "kind: train\n    task: causal_lm_sft",
        f"{{path: {DATA / 'instructions.jsonl'}, prompt_column: prompt, "
        "response_column: response, max_length: 64, eval_ratio: 0}",
        16,
    ),
    "causal_lm": (
        "kind: pretrain\n    objective: causal_lm",
        f"{{path: {DATA / 'corpus.txt'}, format: text, max_length: 48, eval_ratio: 0}}",
        32,
    ),
}
PLAN = """
name: bench
stages:
  - name: lm
    {kind}
    model: {{builtin: {builtin}, vocab_size: 1500}}
    data: {data}
    max_steps: {steps}
    batch_size: {batch}
    packing: {packing}
    precision: {precision}
    log_every_steps: 10
    optimizer: {{name: adamw, lr: 1.0e-3}}
"""


def make_context(args: argparse.Namespace, workload: str, packing: bool, root: Path):
    kind, data, batch = WORKLOADS[workload]
    text = PLAN.format(
        kind=kind,
        builtin=args.builtin,
        data=data,
        steps=args.steps,
        batch=batch,
        packing=str(packing).lower(),
        precision=args.precision,
    )
    plan = load_plan_text(text)
    workspace = Workspace.open(root)
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "bench", "", str(root))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="0", runs_dir=workspace.runs_dir
    )
    recorder = Recorder(store, run_id)
    recorder.start()
    queries.upsert_stage(store, run_id, 0, name="lm", kind=plan.stages[0].kind, status="running")
    ctx = StageContext(
        index=0,
        plan=plan,
        plan_dir=root,
        run_id=run_id,
        run_dir=workspace.run_dir(run_id),
        device=torch.device(args.device),
        store=store,
        recorder=recorder,
        control=Control(),
        cache_dir=root / "cache",
    )
    recipe = SingleModelRecipe(ctx)
    recipe.setup()
    return ctx, recipe


def real_tokens(ctx: StageContext, recipe: SingleModelRecipe) -> int:
    """Non-padding tokens of the stage's batches (the same seeded order the loop draws)."""
    stream = BatchStream(recipe.train_rows, ctx.stage.batch_size, ctx.stage.seed, 0, [0, 0])
    return sum(int(stream.next()["attention_mask"].sum()) for _ in range(ctx.stage.max_steps))


def tokens_per_second(ctx: StageContext, recipe: SingleModelRecipe, tokens: int) -> float:
    seed_everything(0)
    recipe.model = recipe.model.__class__(recipe.model.config)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_stage(ctx, recipe)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    ctx.recorder.flush()
    return tokens / elapsed


def loss_difference(recipe: SingleModelRecipe, rows: list[dict], length: int) -> tuple:
    """Loss per token of `rows` unpacked and packed, one forward with the same weights."""
    from engine.data.encode import pad_batch

    model = recipe.model.eval()
    device = next(model.parameters()).device
    plain = recipe.prepare(pad_batch(rows, recipe.pad_id), seed=0, micro_step=0, train=False)
    packed = pad_batch(pack_rows(rows, length, causal=True), recipe.pad_id)
    out = []
    with torch.no_grad():
        for batch, inputs in ((plain, plain), (packed, model_inputs(packed, model, True))):
            inputs = {k: v.to(device) for k, v in inputs.items()}
            loss = head_loss(model, inputs, count_labelled(batch["labels"], True), True).loss
            out.append(float(loss))
    model.train()
    return out[0], out[1], abs(out[0] - out[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builtin", default="llama-tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--workloads", default="sft,causal_lm")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()
    found: dict[str, dict[str, float]] = {}  # by workload, for --json (bench/gpu.sh)
    load_before = os.getloadavg()[0]
    datasets.disable_progress_bars()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    if not args.json:
        print(f"load before: {load_before:.2f} on {os.cpu_count()} CPUs; device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads.split(","):
            pair = {
                p: make_context(args, workload, p, Path(tmp) / f"{workload}-{p}")
                for p in (False, True)
            }
            tokens = {p: real_tokens(*pair[p]) for p in pair}
            ratios, speeds = [], {False: [], True: []}
            for r in range(args.rounds):
                order = (False, True) if r % 2 == 0 else (True, False)
                got = {p: tokens_per_second(*pair[p], tokens[p]) for p in order}
                for p in got:
                    speeds[p].append(got[p])
                ratios.append(got[True] / got[False])
            ctx, recipe = pair[False]
            rows = recipe.train_rows[:64]
            plain, packed, diff = loss_difference(recipe, rows, ctx.stage.data.max_length)
            fills = {
                p: tokens[p]
                / (args.steps * pair[p][0].stage.batch_size * pair[p][0].stage.data.max_length)
                for p in pair
            }
            found[workload] = {
                "tokens_per_s_unpacked": statistics.median(speeds[False]),
                "tokens_per_s_packed": statistics.median(speeds[True]),
                "packed_vs_unpacked": statistics.median(ratios),
                "loss_per_token_difference": diff,
            }
            print(
                f"{workload}: tokens/s unpacked {statistics.median(speeds[False]):,.0f}, packed "
                f"{statistics.median(speeds[True]):,.0f}; packed ÷ unpacked "
                f"{statistics.median(ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in ratios)}); "
                f"real tokens per step {tokens[False] // args.steps} vs {tokens[True] // args.steps} "
                f"(fill of batch × max_length {fills[False]:.0%} vs {fills[True]:.0%}); "
                f"loss per token unpacked {plain:.6f}, packed {packed:.6f}, difference {diff:.1e}",
                file=sys.stderr if args.json else sys.stdout,
            )
            for ctx, _ in pair.values():
                ctx.recorder.close()
    if args.json:
        load = {"load_before": load_before, "load_after": os.getloadavg()[0]}
        print(json.dumps({"device": args.device, "workloads": found, **load}))
        return 0
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
