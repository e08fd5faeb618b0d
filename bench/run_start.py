"""From pressing Run to the first training step: an engine started as a process of its own
against one forked by the engine server (engine/process/server.py), side by side.

    python bench/run_start.py [--rounds 5]

Each round starts the same one-stage plan (bert-tiny masked LM on the demo corpus, a few
steps) both ways through `start_run`, as the window and the CLI do, in alternating order,
and times until the first `train/loss` point is in the store and until the engine has
exited. Prints the medians and their ratios, and the machine's load before and after.
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

from engine.launch.runs import start_run  # noqa: E402
from engine.launch.served import SERVER_ENV, start_server  # noqa: E402
from engine.resources import resources_dir  # noqa: E402
from engine.store import Store, Workspace, queries  # noqa: E402

PLAN = """
name: run-start
stages:
  - name: mlm
    kind: pretrain
    model: {{builtin: bert-tiny, vocab_size: 300}}
    data: {{path: {corpus}, format: text, max_length: 32, eval_ratio: 0.02}}
    batch_size: 16
    max_steps: {steps}
    log_every_steps: 1
"""


def one_start(ws: Workspace, store: Store, plan: str, served: str | None) -> tuple[float, float]:
    """Seconds from start_run to the first train/loss point, and to the engine's exit."""
    if served:
        os.environ[SERVER_ENV] = served
    else:
        os.environ.pop(SERVER_ENV, None)
    began = time.perf_counter()
    started = start_run(ws, store, plan_text=plan, plan_dir=str(ws.root), use_cache=False)
    assert not started.problems, started.problems
    first = None
    while started.proc.poll() is None:
        if first is None and any(
            m.key == "train/loss" for m in queries.latest_metrics(store, started.run_id)
        ):
            first = time.perf_counter() - began
        time.sleep(0.02)
    ended = time.perf_counter() - began
    assert started.proc.returncode == 0, (ws.run_dir(started.run_id) / "engine.log").read_text()
    return first if first is not None else ended, ended


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    plan = PLAN.format(corpus=resources_dir() / "data" / "corpus.txt", steps=args.steps)
    with tempfile.TemporaryDirectory(prefix="stagelab-") as tmp:
        root = Path(tmp)
        ws = Workspace.open(root / "ws")
        store = Store.open(ws.db_path)
        server = start_server(root / "e.sock", root / "server.log")
        ready = time.perf_counter()
        assert server.stdout.readline().strip() == b"ready", (root / "server.log").read_text()
        server_ready = time.perf_counter() - ready
        times: dict[str, list[tuple[float, float]]] = {"own process": [], "served": []}
        for r in range(args.rounds):
            ways = ["own process", "served"] if r % 2 == 0 else ["served", "own process"]
            for way in ways:
                socket_path = str(root / "e.sock") if way == "served" else None
                times[way].append(one_start(ws, store, plan, socket_path))
            print({k: [round(x, 2) for x in v[-1]] for k, v in times.items()}, file=sys.stderr)
        server.terminate()
        server.wait()
    first = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    ended = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    result = {
        "first_step_s": {k: round(v, 2) for k, v in first.items()},
        "ended_s": {k: round(v, 2) for k, v in ended.items()},
        "first_step_served_vs_own": round(first["served"] / first["own process"], 3),
        "server_ready_s": round(server_ready, 2),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "setup": f"bert-tiny MLM, {args.steps} steps, {args.rounds} rounds each way",
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['setup']}; the server was ready {server_ready:.1f} s after its start")
    for way in times:
        print(f"  {way:12s} first step {first[way]:6.2f} s   engine ended {ended[way]:6.2f} s")
    print(f"  served ÷ own process, to the first step: {result['first_step_served_vs_own']:.3f}")
    print(f"  load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
