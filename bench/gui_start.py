"""Cold start of the window: from starting the process to an interactive window (shown,
first paint done, event loop idle), median of several starts, next to a bare Python start.
Measured the way people start it (`stagelab`, which hands over to the window process) and
as the window process alone (`python -m app`).

    QT_QPA_PLATFORM=offscreen python bench/gui_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def time_child(*args: str) -> tuple[float, float]:
    """Seconds from process start to the READY and PREVIEW lines (or to its exit)."""
    start = time.time()
    env = {**os.environ, "STAGELAB_REPORT_START": "1"}
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, env=env
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
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    workspace = tempfile.mkdtemp(prefix="stagelab-bench-")
    ways = {
        "stagelab": ("-m", "engine.cli", "--workspace", workspace, "gui"),
        "python -m app": ("-m", "app", "--workspace", workspace),
    }
    time_child(*ways["stagelab"])  # warm the OS file cache once, as a second start would be
    window = {name: [] for name in ways}
    drawn, bare = [], []
    for _ in range(args.runs):  # interleaved, so drift hits every way alike
        for name, way in ways.items():
            ready, preview = time_child(*way)
            window[name].append(ready)
            if name == "stagelab":
                drawn.append(preview)
        bare.append(time_child("-c", "pass")[0])
    for name, times in window.items():
        print(
            f"window interactive, {name + ':':15s} median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f})"
        )
    print(f"LR preview drawn (stagelab):      median {statistics.median(drawn):.2f} s")
    print(f"bare python start:                median {statistics.median(bare):.2f} s")


if __name__ == "__main__":
    main()
