"""Cold start of the window: from starting the process to an interactive window (shown,
the event loop's first idle moment, which both platforms tried, offscreen and xcb, reach
just before the first paint's event: its drawing is not in the figure, for either code),
median of several starts, next to a bare Python start.
Measured the way people start it (`stagelab`, which hands over to the window process) and
as the window process alone (`python -m app`).

    QT_QPA_PLATFORM=offscreen python bench/gui_start.py [--runs 7] [--baseline DIR]

--baseline DIR|REF times another checkout of Stagelab (its code, this Python) in the same
interleaved rounds: a folder, or a git commit/tag of this repository, checked out into a
temporary folder for the run, e.g. the round-1 code: `--baseline f852a79`. Each way's
median is then also given as a ratio to the baseline's.

--instructions counts instead the machine instructions `python -m app` executes up to the
window's first idle moment (valgrind's callgrind, one start each after a warm-up; hash seed
fixed): the same count on every try and whatever the machine's load, so a change of 1 %
shows where timing on a busy machine cannot (each start takes ~1 min under valgrind).

The children may write and read bytecode caches (__pycache__), as every start after the
first does on a user's machine (pip compiles an installed wheel), even where the
environment sets PYTHONDONTWRITEBYTECODE (this one does: a checkout without caches then
compiles its sources at every start, ~0.14 s of CPU for app/ and engine/spec); --source
keeps that setting (caches already written are still read).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Put on the children's path: their READY/PREVIEW lines get the CPU seconds the process
# (stagelab's part included: an exec keeps the count) had used by then, which a loaded
# machine changes far less than the wall time. Any checkout's window prints those lines.
CPU_STAMP = """
import os, sys, time
class _Stamped:
    def __init__(self, out):
        self._out = out
    def write(self, text):
        if text.startswith(("READY ", "PREVIEW ")):
            text += f" {time.process_time():.4f}"
        if text.startswith("READY ") and os.environ.get("STAGELAB_BENCH_EXIT_AT_READY"):
            self._out.write(text + "\\n")
            self._out.flush()
            os._exit(0)
        return self._out.write(text)
    def __getattr__(self, name):
        return getattr(self._out, name)
sys.stdout = _Stamped(sys.stdout)
"""


def time_child(*args: str, cwd: str | None = None) -> tuple[float, float, float, float]:
    """Seconds from process start to the READY and PREVIEW lines (or to its exit), then
    the CPU seconds used by each; `cwd` is the checkout whose code runs (`-m` puts it first
    on the path)."""
    start = time.time()
    env = {**os.environ, "STAGELAB_REPORT_START": "1"}
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, env=env, cwd=cwd
    ).stdout
    marks = {
        line.split()[0]: (float(line.split()[1]) - start, float(line.split()[2]))
        for line in out.splitlines()
        if line.startswith(("READY", "PREVIEW"))
    }
    if marks:
        assert "HEAVY []" in out, out
        return *marks["READY"], *marks["PREVIEW"]
    end = time.time() - start
    return end, 0.0, end, 0.0


def checkout(ref: str, here: str) -> str:
    """A temporary folder with the code of git commit `ref` (git archive: no worktree
    metadata is left behind)."""
    folder = tempfile.mkdtemp(prefix="stagelab-baseline-")
    archive = subprocess.run(
        ["git", "-C", here, "archive", "--format=tar", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--baseline", metavar="DIR|REF", help="another checkout or git ref, timed alongside"
    )
    parser.add_argument(
        "--source", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the instructions of python -m app to READY (valgrind) instead of timing",
    )
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if not args.source:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    cached = not os.environ.get("PYTHONDONTWRITEBYTECODE")
    print(f"bytecode caches: {'written and used' if cached else 'not written, read if there'}")
    stamp = tempfile.mkdtemp(prefix="stagelab-bench-stamp-")
    Path(stamp, "sitecustomize.py").write_text(CPU_STAMP)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [stamp, os.getenv("PYTHONPATH")]))
    here = str(Path(__file__).resolve().parents[1])
    baseline = args.baseline
    if baseline and not Path(baseline).is_dir():
        baseline = checkout(baseline, here)
        print(f"baseline: {args.baseline} checked out in {baseline}")
    try:
        if args.instructions:
            count_instructions(here, baseline)
        else:
            measure(here, baseline, args.runs)
    finally:
        if baseline and baseline != args.baseline:
            shutil.rmtree(baseline, ignore_errors=True)
        shutil.rmtree(stamp, ignore_errors=True)


def count_instructions(here: str, baseline: str | None) -> None:
    """Instructions `python -m app` executes to READY, for this code and the baseline's."""
    counts = {}
    for label, cwd in {"": here, " (baseline)": baseline}.items():
        if cwd is None:
            continue
        workspace = tempfile.mkdtemp(prefix="stagelab-bench-")
        env = {**os.environ, "STAGELAB_BENCH_EXIT_AT_READY": "1", "PYTHONHASHSEED": "0"}
        app = [sys.executable, "-m", "app", "--workspace", workspace]
        env["STAGELAB_REPORT_START"] = "1"
        subprocess.run(app, cwd=cwd, env=env, capture_output=True, check=True)  # caches
        grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        done = subprocess.run(grind + app, cwd=cwd, env=env, capture_output=True, text=True)
        assert "READY" in done.stdout, done.stderr[-2000:]
        line = next(x for x in done.stderr.splitlines() if "Collected :" in x)
        counts[label] = int(line.split(":")[-1])
        print(f"instructions to READY, python -m app{label}: {counts[label] / 1e9:.3f} G")
    if len(counts) == 2:
        print(f"ratio to the baseline: {counts[''] / counts[' (baseline)']:.3f}")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def measure(here: str, baseline: str | None, runs: int) -> None:
    codes = {"": here} | ({" (baseline)": baseline} if baseline else {})
    ways = {}
    for label, cwd in codes.items():
        workspace = tempfile.mkdtemp(prefix="stagelab-bench-")  # each code its own schema
        ways["stagelab" + label] = (cwd, ("-m", "engine.cli", "--workspace", workspace, "gui"))
        ways["python -m app" + label] = (cwd, ("-m", "app", "--workspace", workspace))
    for cwd, way in ways.values():  # warm the OS file cache once, as a second start would be
        time_child(*way, cwd=cwd)
    window = {name: [] for name in ways}
    drawn = {name: [] for name in ways if name.startswith("stagelab")}
    cpu = {name: [] for name in ways}
    drawn_cpu = {name: [] for name in drawn}
    bare = []
    for _ in range(runs):  # interleaved, so drift hits every way alike
        for name, (cwd, way) in ways.items():
            ready, ready_cpu, preview, preview_cpu = time_child(*way, cwd=cwd)
            window[name].append(ready)
            cpu[name].append(ready_cpu)
            if name in drawn:
                drawn[name].append(preview)
                drawn_cpu[name].append(preview_cpu)
        bare.append(time_child("-c", "pass")[0])
    for name, times in window.items():
        print(
            f"window interactive, {name + ':':26s} median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}), CPU "
            f"{statistics.median(cpu[name]):.2f} s"
        )
    for name, times in drawn.items():
        print(
            f"LR preview drawn, {name + ':':28s} median {statistics.median(times):.2f} s, "
            f"CPU {statistics.median(drawn_cpu[name]):.2f} s"
        )
    for name in [n for n in window if n + " (baseline)" in window]:
        ours, theirs = (statistics.median(window[n]) for n in (name, name + " (baseline)"))
        mine, base = (statistics.median(cpu[n]) for n in (name, name + " (baseline)"))
        print(
            f"ratio to the baseline, window interactive, {name}: {ours / theirs:.2f} "
            f"(CPU {mine / base:.2f})"
        )
        if name in drawn:
            ours, theirs = (statistics.median(drawn[n]) for n in (name, name + " (baseline)"))
            mine, base = (statistics.median(drawn_cpu[n]) for n in (name, name + " (baseline)"))
            print(
                f"ratio to the baseline, LR preview drawn, {name}: {ours / theirs:.2f} "
                f"(CPU {mine / base:.2f})"
            )
    print(f"bare python start:{'':29s} median {statistics.median(bare):.2f} s")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
