"""The monitor's curve data: level-of-detail keeps every spike, live appends match a full
rebuild, smoothing is TensorBoard's debiased EMA, and resume truncation leaves no repeat."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.curve import Curve, ema
from app.model.peaks import PeakLevels
from app.model.run_series import RunSeries
from engine.channel.messages import parse_message


def test_every_spike_survives_the_level_of_detail():
    rng = np.random.default_rng(0)
    x = np.arange(1_000_000, dtype=float)
    y = rng.normal(size=x.size)
    y[123_457], y[876_543] = 50.0, -40.0  # single-point spikes
    levels = PeakLevels()
    levels.update(x, y)
    xs, ys = levels.view(-np.inf, np.inf, target=1000)
    assert len(xs) < 5000  # drawn from a coarse level
    assert ys.max() == 50.0 and ys.min() == -40.0
    xs, ys = levels.view(800_000, 900_000, target=1000)
    assert ys.min() == -40.0 and xs[0] <= 800_000 and xs[-1] >= 900_000


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=6), st.floats(0, 1e6))
def test_growing_levels_equal_levels_built_at_once(chunks, lo):
    rng = np.random.default_rng(len(chunks))
    total = sum(chunks)
    x, y = np.arange(total, dtype=float), rng.normal(size=total)
    grown, end = PeakLevels(), 0
    for size in chunks:
        end += size
        grown.update(x[:end], y[:end], grown=end > size)
    whole = PeakLevels()
    whole.update(x, y)
    for a, b in zip(grown.view(lo, lo + 5000, 50), whole.view(lo, lo + 5000, 50), strict=True):
        np.testing.assert_array_equal(a, b)


def test_ema_is_tensorboards_smoothing_and_continues_across_appends():
    values = np.random.default_rng(1).normal(size=5000)
    expected, state = [], 0.0
    for i, v in enumerate(values, 1):
        state = 0.95 * state + 0.05 * v
        expected.append(state / (1 - 0.95**i))
    first, carry = ema(values[:1234], 0.95)
    rest, _ = ema(values[1234:], 0.95, *carry)
    np.testing.assert_allclose(np.concatenate([first, rest]), expected, rtol=1e-9)


def test_live_curve_equals_a_rebuild_and_truncation_leaves_no_repeat():
    run = RunSeries("r")
    run.update_stage({"idx": 0, "name": "a", "status": "finished", "global_step_start": 0})
    run.update_stage({"idx": 1, "name": "b", "status": "running", "global_step_start": 10})
    run.add_series("train/loss", 0, range(1, 11), np.linspace(3, 2, 10))
    live = Curve("train/loss")
    assert live.sync(run, 0.6) == "rebuilt"
    run.add_points([(1, "train/loss", s, 1.0 / s) for s in range(1, 8)])
    assert live.sync(run, 0.6) == "grown"
    # A resumed engine restarts from its checkpoint at step 4 of stage 1.
    run.add_event({"seq": 99, "kind": "truncated", "data": {"stage": 1, "after_step": 4}})
    run.add_points([(1, "train/loss", s, 1.0 / s) for s in range(5, 9)])
    assert live.sync(run, 0.6) == "rebuilt"
    fresh = Curve("train/loss")
    fresh.sync(run, 0.6)
    for smoothed in (False, True):
        for a, b in zip(live.arrays(smoothed), fresh.arrays(smoothed), strict=True):
            np.testing.assert_array_equal(a, b)
    x, y = live.arrays()
    assert np.isnan(y[10])  # the line breaks between the stages
    assert x[11:].tolist() == [11, 12, 13, 14, 15, 16, 17, 18]
    # Points re-read from an earlier stream position are not drawn twice.
    run.add_points([(1, "train/loss", s, 1.0 / s) for s in range(6, 10)])
    assert run.series["train/loss"][1].steps.tolist() == list(range(1, 10))


def test_redrawing_does_not_corrupt_the_interpreter(qtbot):
    """PySide6 6.12.0 dropped a reference to None on every axis repaint, crashing the
    window ("deallocating None") after a few thousand redraws; the version pin keeps it
    out, and this catches any Qt binding that does it again."""
    import sys

    from app.qt.qt_curve_plot import QtCurvePlot

    plot = QtCurvePlot("Loss")
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    plot.show()
    x = np.arange(1000.0)
    plot.set_curve("train/loss", x, np.sin(x))
    plot.grab()
    before = sys.getrefcount(None)
    for i in range(200):
        plot.setXRange(0, 50 + i * 4, padding=0)
        plot.grab()
    assert sys.getrefcount(None) >= before


def test_monitor_draws_gpu_samples_and_progress_from_channel_messages(qtbot):
    """The `gpu` and `progress` messages a CUDA engine sends (docs/protocol.md) become the
    GPU graphs and the bars (CI has no GPU, so they are fed here as the channel gives them)."""
    from app.qt.monitor.qt_run_monitor import QtRunMonitor

    monitor = QtRunMonitor(lambda: None)
    qtbot.addWidget(monitor)
    monitor.run = RunSeries("r", status="running")
    monitor._message(
        parse_message(
            {
                "type": "stage",
                "idx": 0,
                "name": "mlm",
                "status": "running",
                "total_steps": 100,
                "steps_done": 0,
            }
        )
    )
    for t in range(5):
        monitor._message(
            parse_message(
                {
                    "type": "gpu",
                    "gpus": [
                        {
                            "index": 0,
                            "name": "NVIDIA H100",
                            "memory_used": (10 + t) * 2**30,
                            "memory_total": 80 * 2**30,
                            "utilization": 90 + t,
                        }
                    ],
                }
            )
        )
    monitor._message(
        parse_message(
            {
                "type": "progress",
                "stage": 0,
                "step": 40,
                "total": 100,
                "steps_per_s": 8.0,
                "eta_s": 7.5,
                "overall_step": 40,
                "overall_total": 100,
                "overall_eta_s": 7.5,
            }
        )
    )
    monitor._redraw()
    memory = monitor.gpu_memory.sources["0: NVIDIA H100"][0]
    assert memory.y.tolist() == [10, 11, 12, 13, 14]
    assert monitor.gpu_load.sources["0: NVIDIA H100"][0].y[-1] == 94
    assert monitor.progress.overall.value() == 40
    assert "8.0 steps/s" in monitor.progress.overall_text.text()
    assert "ETA 8 s" in monitor.progress.rows[0][2].text()
    monitor.close_run()
