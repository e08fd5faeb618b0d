"""The run monitor against a real engine subprocess training a tiny plan: the curve grows
while it trains; stop then resume continues the same curve without a gap or a repeated
step; a new window re-attaches mid-run with the full history and goes live again; a
killed engine shows `interrupted` within 10 s and offers Resume."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app import create_main_window
from app.model.plan_document import PlanDocument
from engine.resources import demo_plan_path
from engine.store import queries
from tests.app.conftest import mark_saved

pytestmark = pytest.mark.slow

DATA_DIR = demo_plan_path().parent.parent / "data"
LONG_PLAN = """
name: monitor-test
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 16, eval_ratio: 0.05}
    batch_size: 8
    max_steps: 20
    eval: {every_steps: 10, metrics: [loss, accuracy]}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: reviews.csv, max_length: 16, eval_ratio: 0.1}
    batch_size: 8
    max_steps: 50000
    log_every_steps: 5
    eval: {every_steps: 200, metrics: [loss, accuracy, confusion_matrix]}
    checkpoint: {every_steps: 100}
"""


def loss_steps(monitor, stage: int) -> list[int]:
    """Steps of train/loss in one stage, as the monitor holds them."""
    series = monitor.run.series.get("train/loss", {}).get(stage)
    return [] if series is None else series.steps.astype(int).tolist()


def drawn_points(monitor) -> int:
    """Finite points of the drawn train/loss curve (the plot's own data)."""
    source = monitor.plots.loss.sources.get("train/loss")
    return 0 if source is None else int(np.isfinite(source[0].y).sum())


def assert_continuous(steps: list[int]) -> None:
    assert steps == list(range(1, len(steps) + 1)), "a gap or a repeated step in the curve"


@pytest.fixture
def live_window(qtbot, tmp_path):
    ws = tmp_path / "ws"
    win = create_main_window(ws)
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1400, 900)
    win.show()
    yield win
    run_id = getattr(win, "last_run_id", None)
    if run_id is not None:  # never leave an engine behind
        info = queries.get_run(win.store(), run_id)
        if info.pid and info.status in ("running", "paused", "stopping"):
            try:
                os.kill(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_live_curve_stop_resume_reattach_and_kill(qtbot, live_window):
    win = live_window
    win.set_document(PlanDocument.from_text(LONG_PLAN, DATA_DIR))
    qtbot.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Run
    monitor = win.runs.monitor
    assert win.runs.tabs.currentWidget() is monitor
    run_id = win.last_run_id

    # The curve gains points while the run trains.
    qtbot.waitUntil(lambda: len(loss_steps(monitor, 1)) >= 20, timeout=90_000)
    assert monitor.run.status == "running"
    before = drawn_points(monitor)
    qtbot.waitUntil(lambda: drawn_points(monitor) > before + 20, timeout=30_000)
    assert monitor.progress.rows and monitor.progress.overall.value() > 0

    # Stop, then resume in the same run: the curve continues without gap or repeat.
    qtbot.mouseClick(monitor.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: monitor.run.status == "stopped", timeout=30_000)
    stopped_at = len(loss_steps(monitor, 1))
    assert monitor.resume_button.isEnabled() and not monitor.stop_button.isEnabled()
    qtbot.mouseClick(monitor.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(loss_steps(monitor, 1)) >= stopped_at + 30, timeout=90_000)
    assert monitor.run.status == "running"
    assert_continuous(loss_steps(monitor, 0))
    assert_continuous(loss_steps(monitor, 1))
    assert queries.get_run(win.store(), run_id).resume_count == 1

    # Close the window mid-run: the run goes on; a new window re-attaches with everything.
    shown = len(loss_steps(monitor, 1))
    win.close()
    assert queries.get_run(win.store(), run_id).status == "running"
    again = create_main_window(win.workspace.root)
    qtbot.addWidget(again, before_close_func=mark_saved)
    again.show()
    again.runs.show_tab(1)
    browser = again.runs.browser
    browser.select(run_id)
    qtbot.mouseClick(browser.open_button, Qt.MouseButton.LeftButton)
    monitor = again.runs.monitor
    qtbot.waitUntil(lambda: not monitor.loading, timeout=30_000)
    # Back-filled from the store (which trails the live stream by its ~1 s write batches),
    # then live from the stored position on.
    assert len(loss_steps(monitor, 0)) == 20 and len(loss_steps(monitor, 1)) >= stopped_at
    qtbot.waitUntil(lambda: len(loss_steps(monitor, 1)) > shown + 20, timeout=30_000)
    assert monitor.channel is not None  # live again
    assert_continuous(loss_steps(monitor, 1))

    # Kill the engine: the monitor says `interrupted` within 10 s and offers Resume.
    pid = queries.get_run(again.store(), run_id).pid
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    qtbot.waitUntil(lambda: monitor.run.status == "interrupted", timeout=10_000)
    assert time.monotonic() - killed < 10
    assert monitor.resume_button.isEnabled()
    assert "interrupted" in monitor.badge.text()
