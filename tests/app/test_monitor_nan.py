"""The monitor draws a diverged loss as what it is: NaN/inf points marked as a red band with
a label, unlike the plain gap between two stages, and says so when the record had trouble."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.qt.monitor.qt_run_monitor import QtRunMonitor
from engine.store import Store, Workspace, queries


def diverged_run(root) -> tuple[Store, str]:
    """A finished two-stage run whose second stage diverges at step 11 (real store)."""
    ws = Workspace.open(root)
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "diverged", "name: diverged\nstages: []\n", str(root))
    run = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=ws.runs_dir
    )
    points, seq = [], 0
    for stage, name in enumerate(("warm-up", "diverge")):
        queries.upsert_stage(
            store,
            run,
            stage,
            name=name,
            kind="train",
            status="finished",
            total_steps=16,
            steps_done=16,
            global_step_start=16 * stage,
        )
        for step in range(1, 17):
            value = 2.0 - step * 0.05
            if stage == 1 and step >= 11:
                value = math.inf if step == 11 else math.nan
            seq += 1
            points.append((stage, "train/loss", step, value, step, seq))
            if stage == 1:  # every gradient norm of the diverging stage is NaN
                seq += 1
                points.append((stage, "train/grad_norm", step, math.nan, step, seq))
    queries.add_metrics(store, run, points)
    queries.add_events(
        store,
        run,
        [
            {
                "kind": "store",
                "level": "warning",
                "message": "database writes have failed for 6 s",
                "data": None,
                "wall_ms": 1,
                "seq": seq + 1,
            }
        ],
    )
    queries.set_run_status(store, run, "finished")
    return store, run


def test_nan_and_inf_are_marked_not_drawn_as_a_stage_gap(qtbot, tmp_path):
    store, run_id = diverged_run(tmp_path / "ws")
    monitor = QtRunMonitor(lambda: store)
    qtbot.addWidget(monitor)
    monitor.resize(1024, 640)
    monitor.show()
    monitor.open_run(run_id)
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    plot = monitor.plots.loss
    # Stage 2 starts at global step 16: its steps 11..16 are x 27..32, one band from +inf on.
    assert plot.odd_bands("train/loss") == [(27.0, 32.0, "NaN/+inf")]
    y = plot.sources["train/loss"][0].y
    assert np.isfinite(y).sum() == 26  # 16 + 10 finite points; the rest break the line
    assert "NaN/+inf" in plot.values_at(30.0)
    assert "step 5" in plot.values_at(5.0) and "NaN" not in plot.values_at(5.0)
    assert monitor.record_warning.isVisible()
    assert "database writes have failed" in monitor.record_warning.text()
    # A series of NaN only is drawn with its band, not hinted at as "not logged yet".
    norm = monitor.plots.plots["Gradient norm"]
    assert norm.odd_bands("train/grad_norm") and not norm.hint.isVisibleTo(monitor)
    monitor.grab().save(str(tmp_path / "monitor-nan.png"))
    monitor.close_run()


@pytest.mark.parametrize(
    ("kind", "title", "message"),
    [
        (
            "model",
            "Model",
            "/m lacks 6 weight tensor(s) this masked_lm model needs (cls.predictions)",
        ),
        ("empty_step", "Training", "6 of 40 steps had no labelled position (no update)"),
    ],
)
def test_what_changes_how_the_curves_read_is_said_above_the_plots(
    qtbot, tmp_path, kind, title, message
):
    store, run_id = diverged_run(tmp_path / "ws")
    queries.add_events(
        store,
        run_id,
        [
            {
                "stage_idx": 0,
                "kind": kind,
                "level": "warning",
                "message": message,
                "data": None,
                "wall_ms": 2,
                "seq": 10_000,
            }
        ],
    )
    monitor = QtRunMonitor(lambda: store)
    qtbot.addWidget(monitor)
    monitor.show()
    monitor.open_run(run_id)
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    assert monitor.record_warning.isVisible()
    assert monitor.record_warning.text() == f"{title}: {message}"
    monitor.close_run()


def test_an_ensemble_reports_a_table_and_bars_not_curves(qtbot, tmp_path):
    store, run_id = diverged_run(tmp_path / "ws")
    report = {
        "combiner": "weighted",
        "split": "test",
        "rows": 72,
        "members": {"0-a": {"accuracy": 0.8, "f1": 0.79}, "1-b": {"accuracy": 0.7, "f1": 0.69}},
        "ensemble": {"accuracy": 0.85, "f1": 0.84},
        "weights": {"0-a": 0.75, "1-b": 0.25},
        "labels": ["negative", "positive"],
    }
    queries.add_events(
        store,
        run_id,
        [
            {
                "stage_idx": 1,
                "kind": "ensemble",
                "level": "info",
                "message": "weighted of 2",
                "data": report,
                "wall_ms": 3,
                "seq": 10_001,
            }
        ],
    )
    monitor = QtRunMonitor(lambda: store)
    qtbot.addWidget(monitor)
    monitor.resize(1024, 640)
    monitor.show()
    assert not monitor.side.isTabVisible(3)
    monitor.open_run(run_id)
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    assert monitor.side.isTabVisible(3) and monitor.side.currentWidget() is monitor.ensemble
    table = monitor.ensemble.table
    rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    columns = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert rows == ["0-a", "1-b", "ensemble"] and columns == ["accuracy", "f1", "weight"]
    assert table.item(2, 0).text() == "0.8500" and table.item(0, 2).text() == "0.7500"
    assert "weighted of 2 members on 72 test rows" in monitor.ensemble.caption.text()
    monitor.grab().save(str(tmp_path / "monitor-ensemble.png"))
    monitor.close_run()
