"""Part 3 of bench/monitor.py (run it from there): latency from engine to curve. A real
recorder, store and channel server in a separate process (this file with `--serve`)
record a point every 10 ms whose value is its wall-clock time; the monitor's redraw hands
it to the plot; p50/p99 of (drawn - recorded), and the longest event-loop gap."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/ is the script's own folder; importing monitor also puts the checkout first on
# sys.path (engine, app), for the --serve process too.
from monitor import Stalls, wait


def serve(root: str, seconds: float) -> None:
    """The engine side of the latency bench (a separate process): records one point every
    10 ms whose value is the time it was recorded."""
    from engine.channel.server import ChannelServer
    from engine.runtime.context import Control
    from engine.runtime.recorder import Recorder
    from engine.store import Store, queries

    store = Store.open(Path(root) / "stagelab.db")
    run_id = (Path(root) / "run").read_text()
    run_dir = Path(queries.get_run(store, run_id).run_dir)
    queries.claim_run(store, run_id, pid=os.getpid(), host=socket.gethostname())
    recorder = Recorder(store, run_id, flush_every=1.0)
    recorder.start()
    server = ChannelServer(recorder, Control(), run_dir)
    server.start()
    recorder.listeners.append(server.publish)
    recorder.stage(0, status="running", total_steps=int(seconds * 100), global_step_start=0)
    end, step = time.time() + seconds, 0
    while time.time() < end:
        step += 1
        recorder.metrics(0, step, {"train/loss": time.time()})
        time.sleep(0.01)
    recorder.close()
    server.close("finished")


def latency(app, seconds: float) -> None:
    from app.qt.monitor.qt_run_monitor import QtRunMonitor
    from engine.store import Store, Workspace, queries

    root = Path(tempfile.mkdtemp(prefix="stagelab-bench-latency-"))
    ws = Workspace.open(root)
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "latency", "", str(root))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=ws.runs_dir
    )
    queries.upsert_stage(store, run_id, 0, name="points", kind="train", status="pending")
    (root / "run").write_text(run_id)
    engine = subprocess.Popen([sys.executable, __file__, "--serve", str(root), str(seconds)])
    while queries.get_run(store, run_id).status != "running":
        time.sleep(0.05)
    monitor = QtRunMonitor(lambda: store)
    monitor.resize(1400, 900)
    monitor.show()
    lags: list[float] = []
    seen = [0]
    redraw = monitor._redraw

    def measured_redraw():
        redraw()
        series = monitor.run.series.get("train/loss", {}).get(0) if monitor.run else None
        if series is not None and series.size > seen[0]:
            now = time.time()
            lags.extend(now - series.values[seen[0] : series.size])
            seen[0] = series.size

    monitor.redraw_timer.timeout.disconnect()
    monitor.redraw_timer.timeout.connect(measured_redraw)
    monitor.open_run(run_id)
    watch = Stalls()
    while engine.poll() is None:
        wait(app, 0.05)
    wait(app, 0.5)
    lags = sorted(lags[100:])  # the first second: recorded before the monitor attached
    p50, p99 = lags[len(lags) // 2], lags[int(len(lags) * 0.99)]
    print(
        f"engine -> curve latency ({len(lags)} points at 100/s, redraw every "
        f"{monitor.redraw_timer.interval()} ms): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
        f"longest event-loop gap {watch.worst * 1000:.0f} ms"
    )
    monitor.close_run()


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2], float(sys.argv[3]))
