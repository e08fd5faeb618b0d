"""Cold start of the window: from starting the process to an interactive window (shown,
first paint done, event loop idle), median of several starts, next to a bare Python start.

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
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True).stdout
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
    time_child(
        "-m", "app", "--workspace", workspace, "--report-start"
    )  # warm the OS file cache once, as a second start would be
    window, drawn, bare = [], [], []
    for _ in range(args.runs):
        ready, preview = time_child("-m", "app", "--workspace", workspace, "--report-start")
        window.append(ready)
        drawn.append(preview)
        bare.append(time_child("-c", "pass")[0])
    w, p, b = (statistics.median(x) for x in (window, drawn, bare))
    print(f"window interactive: median {w:.2f} s (min {min(window):.2f}, max {max(window):.2f})")
    print(f"LR preview drawn:   median {p:.2f} s")
    print(f"bare python start:  median {b:.2f} s")
    print(f"window start minus interpreter start: {w - b:.2f} s")


if __name__ == "__main__":
    main()
