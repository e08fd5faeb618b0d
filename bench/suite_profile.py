"""Where the test suite's time goes: wall and CPU seconds per module and per test, from the
log that `STAGELAB_TEST_CPU_LOG=FILE` makes the suite write (tests/conftest.py).

    STAGELAB_TEST_CPU_LOG=/tmp/cpu.jsonl bash packaging/bootstrap.sh test
    python bench/suite_profile.py /tmp/cpu.jsonl [--tests 30]

Run the suite in one process on an otherwise idle machine: a test's CPU is the machine's
busy time over it. CPU ÷ wall below the core count means the test waits (daemons, sleeps,
a subprocess's start): such tests gain from running side by side; CPU-bound ones do not.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    parser.add_argument("--tests", type=int, default=30, help="how many of the costliest tests")
    parser.add_argument(
        "--timeline", action="store_true", help="each worker's span, gaps and last tests"
    )
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.log) if line.strip()]
    if args.timeline:
        timeline(rows)
        return
    wall = sum(r["wall"] for r in rows)
    cpu = sum(r["cpu"] for r in rows)
    cores = os.cpu_count() or 1
    print(f"{len(rows)} tests: wall {wall / 60:.1f} min, CPU {cpu / 60:.1f} min")
    print(
        f"lower bound on {cores} cores, if every test ran side by side: {cpu / cores / 60:.1f} min"
    )
    modules: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        m = modules[r["test"].split("::")[0]]
        m[0] += r["wall"]
        m[1] += r["cpu"]
        m[2] += 1
    print(f"\n{'wall s':>8} {'CPU s':>8} {'CPU/wall':>8} {'tests':>5}  module")
    for name, (w, c, n) in sorted(modules.items(), key=lambda kv: -kv[1][1])[:40]:
        print(f"{w:8.1f} {c:8.1f} {c / max(w, 1e-9):8.2f} {n:5d}  {name}")
    print(f"\n{'wall s':>8} {'CPU s':>8} {'CPU/wall':>8}  test")
    for r in sorted(rows, key=lambda r: -r["cpu"])[: args.tests]:
        print(
            f"{r['wall']:8.1f} {r['cpu']:8.1f} {r['cpu'] / max(r['wall'], 1e-9):8.2f}  {r['test']}"
        )


def timeline(rows: list[dict]) -> None:
    """Under xdist: when each worker started and ended, its time between tests, and the
    tests it ran last (a long one there is the run's tail)."""
    rows = [r for r in rows if "start" in r]
    if not rows:
        raise SystemExit("no start times in the log (written since the suite_profile timeline)")
    zero = min(r["start"] for r in rows)
    workers: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        workers[r["worker"]].append(r)
    for name, tests in sorted(workers.items()):
        tests.sort(key=lambda r: r["start"])
        end = max(r["start"] + r["wall"] for r in tests) - zero
        busy = sum(r["wall"] for r in tests)
        print(f"{name}: {len(tests)} tests, ends at {end:.0f} s, in tests {busy:.0f} s")
        for r in tests[-5:]:
            print(f"    {r['start'] - zero:7.1f} {r['wall']:6.1f}  {r['test']}")


if __name__ == "__main__":
    main()
