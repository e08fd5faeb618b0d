"""Where the test suite's time goes: wall and CPU seconds per module and per test, from the
log that `STAGELAB_TEST_CPU_LOG=FILE` makes the suite write (tests/conftest.py).

    STAGELAB_TEST_CPU_LOG=/tmp/cpu.jsonl bash packaging/bootstrap.sh test
    python bench/suite_profile.py /tmp/cpu.jsonl [--tests 30]
    python bench/suite_profile.py --pace A.jsonl B.jsonl …   # the machine's pace in each run

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
    parser.add_argument("log", nargs="+")
    parser.add_argument("--tests", type=int, default=30, help="how many of the costliest tests")
    parser.add_argument(
        "--timeline", action="store_true", help="each worker's span, gaps and last tests"
    )
    parser.add_argument(
        "--pace",
        action="store_true",
        help="compare runs: the CPU the same in-process tests took in each (the machine's pace)",
    )
    args = parser.parse_args()
    logs = [[json.loads(line) for line in open(log) if line.strip()] for log in args.log]
    if args.pace:
        pace(args.log, logs)
        return
    rows = logs[0]
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


def pace(names: list[str], logs: list[list[dict]]) -> None:
    """Runs of the suite on this shared machine differ by up to a quarter in speed (the
    same code, the same tests' CPU). The tests that compute in the worker's own process
    (own CPU ≥ 0.9 of their wall, over 0.5 s) in every run measure the machine: their summed
    own CPU is each run's pace, and its test time scaled to the first run's pace is what
    the run would have taken on that machine."""
    runs = [{r["test"]: r for r in rows} for rows in logs]
    common = set.intersection(*(set(run) for run in runs))
    steady = [
        t
        for t in common
        if all("own" in run[t] and run[t]["wall"] > 0.5 for run in runs)
        and all(run[t]["own"] >= 0.9 * run[t]["wall"] for run in runs)
    ]
    if not steady:
        raise SystemExit("no in-process test common to the runs (logs with 'own' needed)")
    paces = [sum(run[t]["own"] for t in steady) for run in runs]
    print(f"{len(steady)} in-process tests in every run; pace = their own CPU seconds")
    print(f"{'pace s':>8} {'tests s':>8} {'at pace 1':>9}  log")
    for name, rows, value in zip(names, logs, paces, strict=True):
        span = workers_span(rows)
        print(f"{value:8.1f} {span:8.0f} {span * paces[0] / value:9.0f}  {name}")


def workers_span(rows: list[dict]) -> float:
    """Seconds from the first test's start to the last test's end (all workers)."""
    timed = [r for r in rows if "start" in r]
    if not timed:
        return sum(r["wall"] for r in rows)
    return max(r["start"] + r["wall"] for r in timed) - min(r["start"] for r in timed)


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
