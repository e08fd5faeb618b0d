"""The runs table with 10,000 runs (issue 31, item 4; goal: open and filter ≤ 200 ms each).

Builds a workspace of N runs by bulk SQL inserts (tests/many_runs.py: 1,000 experiments of
10 runs, two stages, 15 latest values per run, an evaluation series, tags and notes), then
measures, offscreen, with the window's own widget (app/qt/browser/qt_runs_table.py):

1. open: the runs table's first read and paint with its default columns (final and best
   eval/accuracy with their stage, final eval/loss, tags, note…) until every row is in the
   model and the view has painted;
2. filter: a search typed and applied (`tag:baseline status:finished eval/accuracy>0.5`),
   the SQL search plus the model's update and a paint;
3. filter by a plan setting (`lr<3e-4`): cold (each distinct plan text parsed once) and warm
   (parsed plans kept);
4. refresh: the 3-second poll when nothing changed (what the window pays while it shows);
5. `stagelab ls --where` in-process (the same search, no printing).

Each figure is the median of --repeat tries, with the machine's load average printed.

    python bench/runs_table.py [--runs 10000] [--repeat 5]
    python bench/runs_table.py --shots docs/screenshots   # the window's runs table, 300 runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


CPU: list[float] = []  # this process's CPU time of the last median_ms, per try


def median_ms(fn, repeat: int) -> tuple[float, list[float]]:
    """Median wall time of `fn`; its CPU time (what it costs on an idle machine, less the
    waits for a core that a loaded one adds) goes to CPU."""
    samples = []
    CPU.clear()
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
        CPU.append((time.process_time() - cpu) * 1000)
    return statistics.median(samples), samples


def cpu_ms() -> str:
    return f"(CPU {statistics.median(CPU):.0f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shots", type=Path, help="save screenshots of the window here instead")
    args = parser.parse_args()
    if args.shots:
        shots(args.shots)
        return

    from PySide6.QtWidgets import QApplication

    from app.qt.browser.qt_runs_table import QtRunsTable
    from engine.store import Store
    from engine.store.search import plan_settings, search_runs
    from tests import many_runs

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        db = many_runs.build(Path(tmp) / "ws", runs=args.runs)
        print(f"built {args.runs} runs in {time.perf_counter() - start:.1f} s")
        store = Store.open(db)

        def open_table() -> QtRunsTable:
            table = QtRunsTable(lambda: store)
            table.resize(1400, 800)
            table.show()  # showEvent reads the runs
            table.view.viewport().repaint()
            assert table.model.rowCount() == args.runs
            return table

        tables = []
        opened, tries = median_ms(lambda: tables.append(open_table()), args.repeat)
        opened_cpu = cpu_ms()
        table = tables[-1]
        for other in tables[:-1]:
            other.refresh_timer.stop()
            other.deleteLater()
        app.processEvents()

        def apply(text: str, count: int | None = None) -> None:
            table.search_box.setText(text)
            table.apply_search()
            table.view.viewport().repaint()
            if count is not None:
                assert table.model.rowCount() == count, table.model.rowCount()

        filter_ms, filter_tries = median_ms(
            lambda: apply("tag:baseline status:finished eval/accuracy>0.5"), args.repeat
        )
        filter_cpu = cpu_ms()
        apply("")
        plan_settings.cache_clear()
        start = time.perf_counter()
        apply("lr<3e-4", args.runs // 5)
        cold = (time.perf_counter() - start) * 1000
        apply("")
        warm, _ = median_ms(lambda: apply("lr<3e-4", args.runs // 5), args.repeat)
        warm_cpu = cpu_ms()
        apply("")
        refresh, _ = median_ms(table.refresh, args.repeat)
        refresh_cpu = cpu_ms()
        where, _ = median_ms(
            lambda: search_runs(store, "tag:baseline status:finished eval/accuracy>0.5"),
            args.repeat,
        )
        where_cpu = cpu_ms()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"load average {load:.2f}, {os.cpu_count()} CPUs")
        print("median wall time of each step (and this process's CPU time):")
        print(
            f"open (read + model + paint):     {opened:6.0f} ms {opened_cpu}  tries {_fmt(tries)}"
        )
        print(f"filter (search + model + paint): {filter_ms:6.0f} ms {filter_cpu}")
        print(f"filter by a plan setting, cold:  {cold:6.0f} ms  ({args.runs // 10} plans parsed)")
        print(f"filter by a plan setting, warm:  {warm:6.0f} ms {warm_cpu}")
        print(f"refresh, nothing changed:        {refresh:6.0f} ms {refresh_cpu}")
        print(f"ls --where's search alone:       {where:6.0f} ms {where_cpu}")
        table.refresh_timer.stop()
        store.close()


def shots(out: Path) -> None:
    """runs-table-1400.png and runs-table-1024.png: the main window's Experiments → Runs
    with a search and a tagged, annotated run selected."""
    from PySide6.QtWidgets import QApplication

    from app import create_main_window
    from app.qt.qt_run_actions import EXPERIMENTS_TAB
    from engine.store import Store
    from engine.store.tags import set_run_note, tag_run
    from tests import many_runs

    app = QApplication.instance() or QApplication([])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = many_runs.build(Path(tmp) / "ws", runs=300)
        store = Store.open(db)
        tag_run(store, "r00000000297", ["best", "keep"])
        set_run_note(store, "r00000000297", "Best so far: lr 1e-3.\nTry a longer warmup next.")
        window = create_main_window(Path(tmp) / "ws")
        for width, height in ((1400, 880), (1024, 640)):
            window.resize(width, height)
            window.show()
            window.runs.show_tab(EXPERIMENTS_TAB)
            browser = window.runs.browser
            browser.views.setCurrentWidget(browser.runs_table)
            table = browser.runs_table
            table.search_box.setText("tag:sweep eval/accuracy>0.5 -status:failed")
            table.apply_search()
            table.select(["r00000000297"])
            for _ in range(5):
                app.processEvents()
            window.grab().save(str(out / f"runs-table-{width}.png"))
        window.runs.browser.runs_table.refresh_timer.stop()
        window.doc._saved_text = window.doc.to_yaml()
        window.close()
        store.close()


def _fmt(samples: list[float]) -> str:
    return " ".join(f"{s:.0f}" for s in samples)


if __name__ == "__main__":
    main()
