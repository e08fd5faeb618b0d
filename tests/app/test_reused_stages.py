"""Reused stages are drawn: a clone whose first stage came from the stage cache shows that
stage's curves from the run that trained it, marked as reused (faded under a veil in the
monitor, dashed in compare, "reused from run 1 of tiny" on the stage's label), and
compare steps through the changed lines of the plan diff."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from app.model.run_series import RunSeries
from app.qt.compare.qt_compare import QtCompareView
from app.qt.monitor.qt_run_monitor import QtRunMonitor
from engine.channel.messages import parse_message
from tests.reused_runs import mlm_loss, reused_runs

LABEL = "reused from run 1 of tiny"


@pytest.fixture
def runs(tmp_path):
    return reused_runs(tmp_path / "ws")


def test_a_reused_stage_message_names_its_source_and_its_points_follow():
    run = RunSeries("r")
    run.apply(parse_message({"type": "stage", "idx": 0, "name": "mlm", "status": "running"}))
    run.apply(parse_message({"type": "stage", "idx": 0, "status": "reused", "steps_done": 12,
               "global_step_start": 0, "reused_run_id": "abc", "reused_stage_idx": 0}))  # fmt: skip
    assert run.reused_sources() == {0: ("abc", 0)}
    run.add_reused(0, "reused from run 3", [("train/loss", [1, 2, 3], [3.0, 2.0, 1.0])])
    assert run.series["train/loss"][0].values.tolist() == [3.0, 2.0, 1.0]
    assert run.boundaries() == [(0.0, "mlm (reused from run 3)")]
    assert run.reused_spans() == [(0.0, 12.0, "reused from run 3")]


def open_monitor(qtbot, runs, size=(1400, 880)) -> QtRunMonitor:
    monitor = QtRunMonitor(lambda: runs.store)
    qtbot.addWidget(monitor)
    monitor.resize(*size)
    monitor.show()
    monitor.open_run(runs.clone)
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    return monitor


def test_the_monitor_draws_the_source_points_of_a_reused_stage(qtbot, runs, tmp_path):
    monitor = open_monitor(qtbot, runs)
    run = monitor.run
    reused = run.series["train/loss"][0]
    assert reused.steps.tolist() == list(range(1, 13))
    assert reused.values.tolist() == [mlm_loss(s) for s in range(1, 13)]
    assert run.series["eval/accuracy"][0].steps.tolist() == [6, 12]
    assert run.stages[0].reused_label == LABEL
    # One curve over the whole run: the reused stage's 12 steps, then the 30 trained.
    x, y = (
        monitor.plots.loss.sources["train/loss"][0].x,
        monitor.plots.loss.sources["train/loss"][0].y,
    )
    finite = x[np.isfinite(y)]
    assert finite[:12].tolist() == list(range(1, 13)) and finite[-1] == 42
    # Marked reused: a veil over its steps on every plot, the source on its label and row.
    assert monitor.reused_spans == [(0.0, 12.0, LABEL)]
    veiled = {id(plot) for plot, _ in monitor._veils}
    assert veiled == {id(plot) for plot in monitor.plots.plots.values()}
    assert (0.0, f"mlm ({LABEL})") in run.boundaries()
    # The stage lines and their labels are drawn over the veil, not faded with it.
    lines = [
        item
        for item in monitor.plots.loss.getPlotItem().items
        if isinstance(item, pg.InfiniteLine) and hasattr(item, "label")
    ]
    assert any(LABEL in line.label.format for line in lines)
    assert min(line.zValue() for line in lines) > monitor._veils[0][1].zValue()
    name, _, words = monitor.progress.rows[0]
    assert words.text() == LABEL
    monitor.grab().save(str(tmp_path / "monitor-reused.png"))
    # Opening another run takes the veils away.
    monitor.open_run(runs.source)
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    monitor._redraw()
    assert monitor._veils == [] and monitor.reused_spans == []
    monitor.close_run()


def test_a_stage_reused_while_the_monitor_follows_gets_its_source_points(qtbot, runs):
    from engine.store import queries

    monitor = open_monitor(qtbot, runs)
    # The engine reuses the last stage: source stage 1 (cls, 20 steps) of run 1. A frame
    # of the channel's catch-up says only "reused": the stage row names the source.
    queries.upsert_stage(
        runs.store,
        runs.clone,
        3,
        status="reused",
        steps_done=20,
        global_step_start=42,
        reused_run_id=runs.source,
        reused_stage_idx=1,
    )
    monitor._message(
        parse_message({"type": "stage", "idx": 3, "status": "reused", "steps_done": 20})
    )
    qtbot.waitUntil(lambda: 3 in monitor.run.series["train/loss"], timeout=10_000)
    assert monitor.run.series["train/loss"][3].size == 20
    monitor._redraw()
    assert monitor.reused_spans[-1] == (42.0, 62.0, LABEL)
    monitor.close_run()


def open_compare(qtbot, runs) -> QtCompareView:
    view = QtCompareView(lambda: runs.store)
    qtbot.addWidget(view)
    view.resize(1400, 880)
    view.show()
    view.compare([runs.source, runs.clone])
    qtbot.waitUntil(lambda: len(view.runs) == 2, timeout=10_000)
    return view


def test_compare_draws_a_reused_stage_dashed_from_its_source(qtbot, runs):
    view = open_compare(qtbot, runs)
    assert view.metric_box.currentText() == "train/loss"
    source_label, clone_label = (label for label, _, _ in view.runs)
    reused = f"{clone_label} (reused)"
    assert set(view.plot.curves) == {source_label, clone_label, reused}
    levels = view.plot.sources[reused][0]
    assert levels.x.tolist() == list(range(1, 13))
    assert levels.y.tolist() == [mlm_loss(s) for s in range(1, 13)]
    assert view.plot.curves[reused].opts["pen"].style() == Qt.PenStyle.DashLine
    assert view.plot.curves[clone_label].opts["pen"].style() == Qt.PenStyle.SolidLine
    assert view.plot.sources[clone_label][0].x[0] == 13  # the trained part after it
    # Out of the legend (the run's own entry names it), its label on the stage line.
    texts = [item.text for _, item in view.plot.legend.items]
    assert clone_label in texts and reused not in texts
    view.plot.curves[clone_label].setVisible(False)  # as a click on its legend entry does
    assert not view.plot.curves[reused].isVisible()
    view.plot.curves[clone_label].setVisible(True)
    assert any(f"mlm ({LABEL})" == mark[1] for mark in view.boundary_marks())
    # Aligned on the reused stage: the clone's points there are the source's, dashed.
    view.align.setCurrentIndex(view.align.findData(0))
    assert view.plot.sources[reused][0].x.tolist() == list(range(1, 13))
    assert view.plot.curves[reused].opts["pen"].style() == Qt.PenStyle.DashLine
    view.metric_box.setCurrentText("eval/accuracy")
    assert view.plot.sources[reused][0].x.tolist() == [6, 12]
    # The legend shows this metric's entries only, none over another (a removed entry
    # used to stay painted until the event loop deleted it).
    from app.qt.qt_curve_legend import QtLegendEntry

    shown = [e for e in view.plot.legend.inner.findChildren(QtLegendEntry) if not e.isHidden()]
    assert sorted(e.text for e in shown) == sorted(view.plot.legend.labels())
    rects = [e.geometry() for e in shown]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])


def test_compare_steps_through_the_changes_of_the_plan_diff(qtbot, runs):
    view = open_compare(qtbot, runs)
    # Run 1's plan against the clone's: max_steps, lr, then the two added stages.
    assert len(view.changes) == 3
    # Both plans in the same layout (the clone's may be block style): settings differ.
    assert view.change_text.text() == "change 1 of 3: cls › max_steps: 20 → 30"
    assert not view.previous_change.isEnabled() and view.next_change.isEnabled()

    def row_of(text_edit) -> tuple[int, str]:
        cursor = text_edit.textCursor()
        return cursor.blockNumber(), cursor.block().text()

    assert row_of(view.right_text) == (view.changes[0].row, "  max_steps: 30")
    view.left_text.verticalScrollBar().setValue(0)
    for expected in ("    lr: 0.0003", "- name: vote"):
        qtbot.mouseClick(view.next_change, Qt.MouseButton.LeftButton)
        assert row_of(view.right_text)[1] == expected
        assert row_of(view.left_text)[0] == row_of(view.right_text)[0]
    assert view.change_text.text() == "change 3 of 3: added 13 lines: - name: vote"
    assert not view.next_change.isEnabled()
    # The view scrolled to the added stages (the window is too short to show them all).
    bar = view.right_text.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() > 0
    assert view.left_text.verticalScrollBar().value() == bar.value()
    qtbot.mouseClick(view.previous_change, Qt.MouseButton.LeftButton)
    assert row_of(view.right_text)[1] == "    lr: 0.0003"
    assert view.change_text.text() == "change 2 of 3: cls › optimizer › lr: 0.001 → 0.0003"
    assert view.previous_change.isEnabled() and view.next_change.isEnabled()
    # The same plan on both sides: nothing to step through.
    view.right.setCurrentIndex(0)
    assert view.changes == [] and view.change_text.text() == "the plans are the same"
    assert not view.previous_change.isEnabled() and not view.next_change.isEnabled()


def test_the_plan_diff_ignores_layout():
    """A clone written in block style against its flow-style parent: no change at all."""
    from app.model.plan_diff import plan_changes, same_layout
    from engine.spec import parse_plan_text
    from engine.spec.plan import dump_yaml
    from tests.reused_runs import PLAN

    block = dump_yaml(parse_plan_text(PLAN))
    assert block != PLAN and plan_changes(PLAN.splitlines(), block.splitlines())
    a, b = same_layout(PLAN, block)
    assert plan_changes(a.splitlines(), b.splitlines()) == []
    assert same_layout("stages: [", PLAN) == ("stages: [", PLAN)  # unparsable: as it is
