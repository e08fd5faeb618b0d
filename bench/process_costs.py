"""Where the suite's subprocesses spend CPU: the file bench/process_log/sitecustomize.py
writes, summed by kind of process (fresh interpreters and forks apart) and by test.

    PYTHONPATH=bench/process_log STAGELAB_PROCESS_LOG=/tmp/procs.jsonl \\
        bash packaging/bootstrap.sh test
    python bench/process_costs.py /tmp/procs.jsonl [--tests 25]

The pytest workers are listed too (their own CPU, the in-process tests'). Measured this way
(issue 32): 196 `stagelab` CLI processes cost 115 s of CPU in one run, and a Slurm job's
torchrun and fresh ranks 43 s in one test.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict


def kind(argv: list[str]) -> str:
    """`cli ls`, `engine run`, `-c`, a script's name … from a logged command line."""
    first = argv[1] if len(argv) > 1 else ""
    rest = " ".join(argv[2:])
    if first.endswith("__main__.py"):
        module = "/".join(first.split("/")[-3:-1])
        if module.endswith("engine/cli"):
            match = re.search(r"^(?:--workspace \S+ )?(\S+)", rest)
            return "cli " + (match.group(1) if match else "?")
        if module.endswith("/engine"):
            return "engine " + (argv[2] if len(argv) > 2 else "")
        return module
    return first.split("/")[-1] or argv[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log")
    parser.add_argument("--tests", type=int, default=25, help="how many of the costliest tests")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.log) if line.strip()]
    shared = Counter(r["start"] for r in rows)
    groups: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    tests: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for r in rows:
        how = "fork" if shared[r["start"]] > 1 else "fresh"
        group = groups[(how, kind(r["argv"]))]
        group[0] += r["cpu"]
        group[1] += 1
        if how == "fresh" and r["test"]:
            test = tests[r["test"].split(" ")[0]]
            test[0] += r["cpu"]
            test[1] += 1
    print(f"{len(rows)} processes, {sum(r['cpu'] for r in rows):.0f} s of CPU")
    print(f"\n{'CPU s':>8} {'procs':>6} {'each':>6}  kind")
    for (how, name), (cpu, n) in sorted(groups.items(), key=lambda kv: -kv[1][0])[:30]:
        print(f"{cpu:8.1f} {n:6d} {cpu / n:6.2f}  {how} {name}")
    print(f"\n{'CPU s':>8} {'procs':>6}  test (fresh interpreters it started)")
    for test, (cpu, n) in sorted(tests.items(), key=lambda kv: -kv[1][0])[: args.tests]:
        print(f"{cpu:8.1f} {n:6d}  {test}")


if __name__ == "__main__":
    main()
