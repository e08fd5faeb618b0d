"""The run monitor's drawing and loading costs, measured side by side in one run (offscreen).

1. Redraw of a 10-million-point series, 1000 px wide: a live tick (1,000 new points, then
   paint) and a zoom (new x range, then paint), with Stagelab's level-of-detail
   (app/model/peaks.py), against pyqtgraph's own peak downsampling + clip-to-view on the same
   data, and against the same monitor plot holding 10 thousand points.
2. Opening a finished run with 1 million points in each of 3 series (a real SQLite store):
   side by side, the layout before (one row per point) and now (chunks of 2048 points as
   packed arrays), read and drawn by the same monitor widget, and both layouts' ingest
   rate; then the monitor's own open (worker thread) until every curve is drawn, and the
   longest the event loop went without running (a 5 ms timer's largest gap) meanwhile.
3. Latency from engine to curve (bench/monitor_latency.py): a real recorder, store and channel server in a separate
   process record a point every 10 ms whose value is its wall-clock time; the monitor's
   redraw hands it to the plot; p50/p99 of (drawn − recorded) over 15 s (the first
   second, recorded before the monitor attached, left out), and the longest event-loop
   gap.

    python bench/monitor.py [--points 10000000] [--open-points 1000000] [--seconds 15]
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


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


class Stalls:
    """The largest gap between ticks of a 5 ms timer: how long the event loop was busy."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.last, self.worst = time.perf_counter(), 0.0
        self.timer = QTimer(interval=5, timeout=self._tick)
        self.timer.start()

    def _tick(self):
        now = time.perf_counter()
        self.worst, self.last = max(self.worst, now - self.last), now

    def reset(self):
        self.last, self.worst = time.perf_counter(), 0.0


def wait(app, seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def redraw(app, n: int, rounds: int = 15) -> None:
    import numpy as np
    import pyqtgraph as pg

    from app.qt.qt_curve_plot import QtCurvePlot

    rng = np.random.default_rng(0)
    x_all = np.arange(n + rounds * 1000, dtype=np.float64)
    y_all = np.cumsum(rng.normal(size=x_all.size)) * 1e-3 + rng.normal(size=x_all.size)

    def timed(plot, points: int, grow) -> tuple[float, float]:
        """Median ms of a live tick (`grow` to 1,000 more points, paint) and of a zoom
        (new x range, paint); `grab()` paints everything."""
        app.processEvents()
        ticks, zooms = [], []
        for r in range(rounds):
            start = time.perf_counter()
            grow(points + (r + 1) * 1000)
            plot.grab()
            ticks.append(time.perf_counter() - start)
        for r in range(rounds):
            start = time.perf_counter()
            plot.setXRange(points * r / (2 * rounds), points * (0.5 + r / (2 * rounds)), padding=0)
            plot.grab()
            zooms.append(time.perf_counter() - start)
        plot.close()
        return median_ms(ticks), median_ms(zooms)

    def ours(points: int) -> tuple[float, float]:
        plot = QtCurvePlot("Loss")
        plot.resize(1000, 400)
        plot.show()
        plot.set_curve("loss", x_all[:points], y_all[:points])
        return timed(
            plot, points, lambda end: plot.set_curve("loss", x_all[:end], y_all[:end], grown=True)
        )

    def builtin(points: int) -> tuple[float, float]:
        plot = pg.PlotWidget()
        plot.resize(1000, 400)
        plot.show()
        item = plot.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        curve = item.plot(x_all[:points], y_all[:points])
        return timed(plot, points, lambda end: curve.setData(x_all[:end], y_all[:end]))

    big, small, theirs = ours(n), ours(10_000), builtin(n)
    print(f"redraw, {n:,} points, median of {rounds}:")
    print(
        f"  live tick (+1,000 points, paint): stagelab {big[0]:.1f} ms | pyqtgraph peak+clip "
        f"{theirs[0]:.1f} ms | stagelab at 10k points {small[0]:.1f} ms"
    )
    print(
        f"  zoom (new x range, paint):        stagelab {big[1]:.1f} ms | pyqtgraph peak+clip "
        f"{theirs[1]:.1f} ms | stagelab at 10k points {small[1]:.1f} ms"
    )
    print(
        f"  ratio stagelab/pyqtgraph: tick {big[0] / theirs[0]:.3f}, zoom {big[1] / theirs[1]:.3f}; "
        f"stagelab 10M/10k: tick {big[0] / small[0]:.2f}, zoom {big[1] / small[1]:.2f}"
    )


def make_store(root: Path, points: int) -> tuple[Path, str]:
    from engine.store import Store, Workspace, queries

    ws = Workspace.open(root)
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "big", "name: big\nstages: []\n", str(root))
    run = queries.create_run(
        store,
        exp,
        plan_text="name: big\nstages: []\n",
        plan_dir=str(root),
        gpus="cpu",
        runs_dir=ws.runs_dir,
    )
    queries.upsert_stage(
        store,
        run,
        0,
        name="long",
        kind="pretrain",
        status="finished",
        total_steps=points,
        steps_done=points,
        global_step_start=0,
    )
    queries.set_run_status(store, run, "finished")
    for batch in point_batches(points):
        queries.add_metrics(store, run, batch)
    return ws.root, run


def open_finished(app, points: int) -> None:
    from app.qt.monitor.qt_run_monitor import QtRunMonitor
    from engine.store import Store

    root = Path(tempfile.mkdtemp(prefix="stagelab-bench-open-"))
    start = time.perf_counter()
    ws, run_id = make_store(root, points)
    print(
        f"open a finished run: {points:,} points x 3 series written in "
        f"{time.perf_counter() - start:.0f} s"
    )
    store = Store.open(ws / "stagelab.db")
    times, stalls = [], []
    for _ in range(3):
        monitor = QtRunMonitor(lambda: store)
        monitor.resize(1400, 900)
        monitor.show()
        app.processEvents()
        watch = Stalls()
        start = time.perf_counter()
        monitor.open_run(run_id)
        while monitor.loading:
            wait(app, 0.005)
        monitor._redraw()
        monitor.repaint()
        times.append(time.perf_counter() - start)
        stalls.append(watch.worst)
        watch.timer.stop()
        drawn = monitor.run.point_count("train/loss")
        monitor.close_run()
        monitor.close()
    assert drawn == points
    print(
        f"  until every curve is drawn: median {statistics.median(times):.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in times)}); longest event-loop gap "
        f"{max(stalls) * 1000:.0f} ms"
    )


def rows_layout(root: Path, points: int) -> tuple[Path, float]:
    """The layout before chunks (one row per point, schema 0003's `metrics` table), written
    with its own batched INSERT; returns the file and the ingest rate (points/s)."""
    import sqlite3

    path = root / "rows.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "CREATE TABLE metrics (run_id TEXT, stage_idx INTEGER, key TEXT, step INTEGER, "
        "value FLOAT NOT NULL, wall_ms BIGINT, seq BIGINT, "
        "PRIMARY KEY (run_id, stage_idx, key, step))"
    )
    con.execute("CREATE INDEX ix_seq ON metrics (run_id, seq)")
    spent = 0.0
    for batch in point_batches(points):
        start = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT OR REPLACE INTO metrics VALUES ('r', ?, ?, ?, ?, ?, ?)", batch)
        con.execute("COMMIT")
        spent += time.perf_counter() - start
    con.close()
    return path, 3 * points / spent


def point_batches(points: int, size: int = 100_000):
    import math

    seq = 0
    for lo in range(0, points, size):
        batch = []
        for step in range(lo + 1, min(lo + size, points) + 1):
            base = 3 * math.exp(-step / points * 4)
            for key, value in (
                ("train/loss", base + (step % 7) * 0.01),
                ("train/lr", 1e-3 * (1 - step / points)),
                ("train/grad_norm", 1 + (step % 13) * 0.1),
            ):
                seq += 1
                batch.append((0, key, step, value, 0, seq))
        yield batch


def read_rows_layout(path: Path):
    """Every series of the row layout, read as the monitor did before chunks: one indexed
    query per series, rows straight from the DB-API cursor, numpy arrays per series."""
    import sqlite3

    import numpy as np

    con = sqlite3.connect(path)
    pairs = con.execute("SELECT DISTINCT stage_idx, key FROM metrics WHERE run_id = 'r'").fetchall()
    for stage, key in pairs:
        cursor = con.execute(
            "SELECT step, value, seq FROM metrics WHERE run_id = 'r' AND stage_idx = ? "
            "AND key = ? ORDER BY step",
            (stage, key),
        )
        parts = []
        while rows := cursor.fetchmany(4096):
            parts.append(np.array([r[:2] for r in rows], dtype=np.float64).reshape(-1, 2))
        data = np.concatenate(parts)
        yield stage, key, data[:, 0], data[:, 1]
    con.close()


def open_side_by_side(app, points: int) -> None:
    """Open a finished run of `points` x 3 series from both layouts into the same monitor
    widget, and ingest rates of both."""
    from app.qt.monitor.qt_run_monitor import QtRunMonitor
    from engine.store import Store, queries

    root = Path(tempfile.mkdtemp(prefix="stagelab-bench-layouts-"))
    rows_path, rows_rate = rows_layout(root, points)
    ws, run_id = make_store(root / "chunks", 0)
    store = Store.open(ws / "stagelab.db")
    spent = 0.0
    for batch in point_batches(points):
        start = time.perf_counter()
        queries.add_metrics(store, run_id, batch)
        spent += time.perf_counter() - start
    chunk_rate = 3 * points / spent
    print(
        f"ingest, {3 * points:,} points in batches of 300k: rows {rows_rate / 1e3:.0f}k points/s"
        f" | chunks {chunk_rate / 1e3:.0f}k points/s"
    )

    def timed(source) -> float:
        monitor = QtRunMonitor(lambda: store)
        monitor.resize(1400, 900)
        monitor.show()
        monitor.open_run(run_id)
        while monitor.loading:  # the chunk history of this run is empty: loads at once
            wait(app, 0.005)
        start = time.perf_counter()
        for stage, key, steps, values in source():
            monitor._history_series(stage, key, steps.astype(np.float64), values)
        monitor._redraw()
        monitor.repaint()
        took = time.perf_counter() - start
        assert monitor.run.point_count("train/loss") == points
        monitor.close_run()
        monitor.close()
        return took

    import numpy as np

    from engine.store.browse import read_history

    rows = [timed(lambda: read_rows_layout(rows_path)) for _ in range(3)]
    chunks = [timed(lambda: read_history(store, run_id, 2**62)) for _ in range(3)]
    before, after = statistics.median(rows), statistics.median(chunks)
    print(
        f"open a finished run, {3 * points:,} points, read + every curve drawn (median of 3): "
        f"rows {before:.2f} s | chunks {after:.2f} s (ratio {before / after:.1f}x)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--open-points", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    from monitor_latency import latency  # bench/: the script's own folder
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    redraw(app, args.points)
    open_side_by_side(app, args.open_points)
    open_finished(app, args.open_points)
    latency(app, args.seconds)
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: PySide6 + pyqtgraph can crash in it


if __name__ == "__main__":
    sys.exit(main())
