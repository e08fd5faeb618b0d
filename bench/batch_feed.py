"""What building batches costs the training thread, and what grouping by length saves, on
the engine's real pretrain recipe (masked-LM masks, padding) over real text.

    python bench/batch_feed.py                                  # the demo corpus
    python bench/batch_feed.py --data reviews.csv --column text --batch 64 --max-length 128

Prints, side by side in one run:
- the share of padding in an epoch's batches, random order vs `group_by_length`;
- milliseconds per micro-batch the training thread spends getting its batch, built on the
  thread (`batching.workers: 0`) vs by 2 loader workers while the thread is busy with a
  stand-in for the device step (`--step-ms` of sleep: on a GPU the host thread mostly
  waits for kernels, which is when workers build the next batches).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from engine.recipes import SingleModelRecipe  # noqa: E402
from engine.resources import resources_dir  # noqa: E402
from engine.runtime.context import Control, StageContext  # noqa: E402
from engine.runtime.recorder import Recorder  # noqa: E402
from engine.spec import load_plan_text  # noqa: E402
from engine.store import Store, Workspace, queries  # noqa: E402
from engine.train.batches import Streams  # noqa: E402
from engine.train.feed import Feed  # noqa: E402

PLAN = """
name: bench
stages:
  - name: mlm
    kind: pretrain
    model: {{builtin: bert-tiny, vocab_size: 4000}}
    data: {{path: {data}, text_column: {column}, max_length: {max_length}, eval_ratio: 0}}
    batch_size: {batch}
    max_steps: 1
    augmentation: {{swap_prob: 0.05}}
"""


def make_recipe(args: argparse.Namespace, root: Path) -> SingleModelRecipe:
    plan = load_plan_text(
        PLAN.format(
            data=args.data, column=args.column, max_length=args.max_length, batch=args.batch
        )
    )
    workspace = Workspace.open(root)
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "bench", "", str(root))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=workspace.runs_dir
    )
    ctx = StageContext(
        index=0,
        plan=plan,
        plan_dir=root,
        run_id=run_id,
        run_dir=workspace.run_dir(run_id),
        device=torch.device("cpu"),
        store=store,
        recorder=Recorder(store, run_id),
        control=Control(),
        cache_dir=root / "cache",
    )
    recipe = SingleModelRecipe(ctx)
    recipe.setup()
    return recipe


def padding_share(recipe: SingleModelRecipe, batch: int, grouped: bool) -> float:
    """Padded cells over all cells of one epoch's batches."""
    streams = Streams.open(
        recipe.sources(),
        batch_size=batch,
        seed=0,
        pad_id=recipe.pad_id,
        positions={},
        group_by_length=grouped,
    )
    stream = next(iter(streams.values()))
    cells = real = 0
    for _ in range(stream.per_epoch):
        mask = stream.next()["attention_mask"]
        cells, real = cells + mask.numel(), real + int(mask.sum())
    return 1 - real / cells


def thread_ms(recipe: SingleModelRecipe, workers: int, batches: int, step_ms: float) -> float:
    """Median ms the training thread waits for each batch, with a device step between."""
    stage = recipe.ctx.stage
    batching = stage.batching.model_copy(update={"workers": workers})
    ctx = SimpleNamespace(
        stage=stage.model_copy(update={"batching": batching}), device=torch.device("cpu")
    )
    feed = Feed(ctx, recipe, {}, 0)
    feed.next(0)  # workers started and their queues filled: the steady state is measured
    time.sleep(1.0)
    waits = []
    for micro_step in range(1, batches + 1):
        start = time.perf_counter()
        feed.next(micro_step)
        waits.append((time.perf_counter() - start) * 1000)
        time.sleep(step_ms / 1000)
    feed.close()
    return statistics.median(waits)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(resources_dir() / "data" / "corpus.txt"))
    parser.add_argument("--column", default="text")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--step-ms", type=float, default=50.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recipe = make_recipe(args, Path(tmp))
        rows = len(recipe.train_rows)
        plain = padding_share(recipe, args.batch, grouped=False)
        grouped = padding_share(recipe, args.batch, grouped=True)
        inline = thread_ms(recipe, 0, args.batches, args.step_ms)
        ahead = thread_ms(recipe, 2, args.batches, args.step_ms)
    print(
        f"{Path(args.data).name}: {rows} rows, batch {args.batch}, max_length "
        f"{args.max_length}, masked-LM with swap augmentation"
    )
    print(f"  padding share of an epoch   random order {plain:6.1%}   grouped {grouped:6.1%}")
    print(
        f"  training thread per batch   built on it {inline:6.2f} ms   "
        f"2 workers {ahead:6.2f} ms   ({inline / max(ahead, 1e-9):.0f}x less)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
