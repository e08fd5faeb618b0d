"""The live channel's cost to training and its latency, measured side by side in one run.

1. Overhead: the same masked-LM stage (bert-tiny, CPU) trained by the engine's loop with
   its recorder and channel server, (a) with no client and (b) with a connected client
   that subscribed, has a backlog far beyond its queue, and never reads a byte. Rounds
   alternate; medians compared.
2. Latency: metric points recorded at 1,000 per second; a subscribed client stamps each
   point's arrival; p50/p99 of (arrival − recording) over 10 s.

    python bench/channel.py [--rounds 5] [--steps 80]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.engine_speed import make_context  # noqa: E402
from engine.channel.client import ChannelClient  # noqa: E402
from engine.channel.server import ChannelServer  # noqa: E402
from engine.recipes import SingleModelRecipe  # noqa: E402
from engine.recipes.common import seed_everything  # noqa: E402
from engine.train.loop import train_stage  # noqa: E402


def steps_per_s(ctx, recipe) -> float:
    seed_everything(0)
    recipe.model = recipe.model.__class__(recipe.model.config)
    start = time.perf_counter()
    train_stage(ctx, recipe)
    return ctx.stage.max_steps / (time.perf_counter() - start)


def overhead(args: argparse.Namespace, root: Path) -> None:
    ns = argparse.Namespace(
        builtin="bert-tiny",
        steps=args.steps,
        batch=32,
        max_length=64,
        precision="fp32",
        device="cpu",
    )
    ctx = make_context(ns, root)
    server = ChannelServer(ctx.recorder, ctx.control, ctx.run_dir, queue_bytes=256 * 1024)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    info = server.start()
    ctx.recorder.listeners.append(server.publish)
    recipe = SingleModelRecipe(ctx)
    recipe.setup()
    steps_per_s(ctx, recipe)  # warm-up
    alone, stalled = [], []
    for _ in range(args.rounds):
        alone.append(steps_per_s(ctx, recipe))
        client = ChannelClient(info, name="never reads")
        client.connect()
        client.subscribe(0)  # history and live frames pile up unread on its socket
        # A backlog of 30,000 points (~2.5 MB) first, so the socket and the client's queue
        # are full when the measured stage starts: the worst case for the training loop.
        ctx.recorder.series(9, "bench/backlog", list(range(30_000)), [0.0] * 30_000)
        ctx.recorder.flush()  # the backlog's database write is not what is measured
        time.sleep(0.5)
        stalled.append(steps_per_s(ctx, recipe))
        client.close()
    a, s = statistics.median(alone), statistics.median(stalled)
    print(f"overhead: bert-tiny masked-LM, {args.steps} steps × {args.rounds} rounds, CPU")
    print(
        f"  no client                     {a:7.2f} steps/s  ({', '.join(f'{v:.2f}' for v in alone)})"
    )
    print(
        f"  a client that never reads     {s:7.2f} steps/s  ({', '.join(f'{v:.2f}' for v in stalled)})"
    )
    print(f"  step time, never-reading client ÷ no client: {a / s:.3f}")
    print(f"  live frames dropped for the stalled client: {server.dropped_frames}")
    ctx.recorder.close()
    server.close("finished")


def latency(root: Path, seconds: float = 10.0, rate: int = 1000) -> None:
    from engine.runtime.context import Control
    from engine.runtime.recorder import Recorder
    from engine.store import Store, Workspace, queries

    ws = Workspace.open(root / "latency")
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "latency", "", str(root))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=ws.runs_dir
    )
    run_dir = Path(queries.get_run(store, run_id).run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(store, run_id)
    recorder.start()
    server = ChannelServer(recorder, Control(), run_dir)
    info = server.start()
    recorder.listeners.append(server.publish)
    client = ChannelClient(info, name="latency")
    client.connect()
    client.subscribe(0)
    sent: dict[int, float] = {}
    delays: list[float] = []
    total = int(seconds * rate)

    def read() -> None:
        while len(delays) < total:
            message = client.recv(2)
            if message is None:
                return
            now = time.perf_counter()
            if message["type"] == "metrics":
                delays.extend(now - sent[p[3]] for p in message["points"])

    reader = threading.Thread(target=read)
    reader.start()
    start = time.perf_counter()
    for step in range(1, total + 1):
        target = start + step / rate
        while time.perf_counter() < target:
            time.sleep(max(target - time.perf_counter() - 0.0002, 0))
        sent[step] = time.perf_counter()
        recorder.metrics(0, step, {"train/loss": 1.0 / step})
    reader.join()
    recorder.close()
    server.close("finished")
    delays.sort()
    ms = [d * 1000 for d in delays]
    print(f"latency: {rate} metric points/s for {seconds:.0f} s, {len(ms)} points received")
    print(
        f"  engine → client p50 {ms[len(ms) // 2]:.2f} ms, p99 {ms[int(len(ms) * 0.99)]:.2f} ms, "
        f"max {ms[-1]:.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    with tempfile.TemporaryDirectory() as tmp:
        overhead(args, Path(tmp))
        latency(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
