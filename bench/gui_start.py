"""Cold start of the window: from starting the process to an interactive window (shown,
first paint done, event loop idle), median of several starts, next to a bare Python start.
Measured the way people start it (`stagelab`, which hands over to the window process) and
as the window process alone (`python -m app`).

    QT_QPA_PLATFORM=offscreen python bench/gui_start.py [--runs 7] [--baseline DIR]

--baseline DIR times another checkout of Stagelab (its code, this Python) in the same
interleaved rounds, e.g. the round-1 code:
`mkdir /tmp/r1 && git archive f852a79 | tar -x -C /tmp/r1`, then `--baseline /tmp/r1`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_child(*args: str, cwd: str | None = None) -> tuple[float, float]:
    """Seconds from process start to the READY and PREVIEW lines (or to its exit); `cwd`
    is the checkout whose code runs (`-m` puts it first on the path)."""
    start = time.time()
    env = {**os.environ, "STAGELAB_REPORT_START": "1"}
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, env=env, cwd=cwd
    ).stdout
    marks = {
        line.split()[0]: float(line.split()[1]) - start
        for line in out.splitlines()
        if line.startswith(("READY", "PREVIEW"))
    }
    if marks:
        assert "HEAVY []" in out, out
        return marks["READY"], marks["PREVIEW"]
    end = time.time() - start
    return end, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", metavar="DIR", help="another checkout, timed alongside")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    here = str(Path(__file__).resolve().parents[1])
    codes = {"": here} | ({" (baseline)": args.baseline} if args.baseline else {})
    ways = {}
    for label, cwd in codes.items():
        workspace = tempfile.mkdtemp(prefix="stagelab-bench-")  # each code its own schema
        ways["stagelab" + label] = (cwd, ("-m", "engine.cli", "--workspace", workspace, "gui"))
        ways["python -m app" + label] = (cwd, ("-m", "app", "--workspace", workspace))
    for cwd, way in ways.values():  # warm the OS file cache once, as a second start would be
        time_child(*way, cwd=cwd)
    window = {name: [] for name in ways}
    drawn = {name: [] for name in ways if name.startswith("stagelab")}
    bare = []
    for _ in range(args.runs):  # interleaved, so drift hits every way alike
        for name, (cwd, way) in ways.items():
            ready, preview = time_child(*way, cwd=cwd)
            window[name].append(ready)
            if name in drawn:
                drawn[name].append(preview)
        bare.append(time_child("-c", "pass")[0])
    for name, times in window.items():
        print(
            f"window interactive, {name + ':':26s} median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f})"
        )
    for name, times in drawn.items():
        print(f"LR preview drawn, {name + ':':28s} median {statistics.median(times):.2f} s")
    print(f"bare python start:{'':29s} median {statistics.median(bare):.2f} s")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
