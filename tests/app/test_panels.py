"""The panels people choose (issue 31, items 1-2): a layout that round-trips through the
workspace, a default per stage kind, panels added / removed / reordered through the
editor's buttons, one colour per series in every panel, a crosshair with every series'
value, the x axis by wall time or tokens (greyed out with its reason when the run has no
tokens metric), TensorBoard's debiased EMA against a hand computation, and the same
smoothing in Compare and in the panel export."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from app.model.panels import (
    Panel,
    PanelLayout,
    default_layout,
    layout_path,
    load_layout,
    save_layout,
)
from app.model.run_series import RunSeries
from app.model.smoothing import ema
from app.qt.monitor.qt_run_plots import QtRunPlots


def test_ema_equals_a_hand_computation_debiased_at_the_start():
    # weight 0.5: s1 = 0.5, s2 = 1.25, s3 = 2.125; debiased by 1 - 0.5^t.
    out, state = ema(np.array([1.0, 2.0, 3.0]), 0.5)
    np.testing.assert_allclose(out, [0.5 / 0.5, 1.25 / 0.75, 2.125 / 0.875])
    assert out[0] == 1.0  # the first smoothed value is the first point, not half of it
    assert state == (2.125, 3)
    # A NaN (a stage boundary) restarts the average, debiased again.
    out, _ = ema(np.array([1.0, 2.0, np.nan, 4.0, 6.0]), 0.5)
    # after it: s1 = 0.5 * 4 = 2, s2 = 0.5 * 2 + 0.5 * 6 = 4, debiased 2 / 0.5 and 4 / 0.75
    np.testing.assert_allclose(out[[0, 1, 3, 4]], [1.0, 5 / 3, 4.0, 4.0 / 0.75])
    assert np.isnan(out[2])


def test_a_layout_round_trips_through_the_workspace(tmp_path):
    layout = default_layout(["pretrain", "preference"])
    assert layout.titles()[-1] == "Rewards"  # a preference plan's default
    assert not layout.panels[4].holds("train/reward_margin")  # not in Evaluation then
    assert default_layout().panels[4].holds("train/reward_margin")
    layout.add("Accuracy", ["eval/accuracy*", "!eval/accuracy/mini"])
    layout.move("Accuracy", -10)
    layout.remove("Throughput")
    layout.x_axis, layout.smoothing = "wall", 0.6
    path = save_layout(tmp_path, "my exp/1", layout)
    assert path == layout_path(tmp_path, "my exp/1") and path.parent.name == "views"
    assert path.name.startswith("my_exp_1-") and layout_path(tmp_path, "my_exp_1") != path
    back = load_layout(tmp_path, "my exp/1")
    assert back == layout and back.titles()[0] == "Accuracy"
    assert back.panels[0].holds("eval/accuracy/tiny")
    assert not back.panels[0].holds("eval/accuracy/mini")
    # No file, or one that cannot be read: the default for the plan's stage kinds.
    assert load_layout(tmp_path, "other", ["preference"]) == default_layout(["preference"])
    path.write_text("{not json", encoding="utf-8")
    assert load_layout(tmp_path, "my exp/1") == default_layout()


def two_stage_run(tokens: bool = False) -> RunSeries:
    run = RunSeries("r", status="finished")
    run.update_stage({"idx": 0, "name": "mlm", "status": "finished", "global_step_start": 0})
    run.update_stage({"idx": 1, "name": "cls", "status": "finished", "global_step_start": 20})
    for stage in (0, 1):
        steps = np.arange(1, 21, dtype=float)
        run.add_series("train/loss", stage, steps, np.linspace(3, 1, 20) + stage)
        run.add_series("train/lr", stage, steps, np.full(20, 1e-3))
        run.add_series("eval/loss", stage, [10.0, 20.0], [2.5, 2.0])
        run.add_series("eval/accuracy", stage, [10.0, 20.0], [0.5, 0.7])
        if tokens:
            # As the engine records it: each stage counts its own (checkpointed) tokens.
            run.add_series("perf/tokens_seen", stage, steps, steps * 64)
        run.add_clock(stage, steps, 1000.0 + (steps + 20 * stage) * 6)  # 6 s a step
    return run


def shown(qtbot, size=(1100, 620)) -> QtRunPlots:
    plots = QtRunPlots()
    qtbot.addWidget(plots)
    plots.resize(*size)
    plots.show()
    qtbot.waitExposed(plots)
    return plots


def test_panels_are_added_removed_and_reordered_through_the_editor(qtbot):
    plots = shown(qtbot)
    run = two_stage_run()
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    saved = []
    plots.layoutChanged.connect(saved.append)
    qtbot.mouseClick(plots.bar.panels_button, Qt.MouseButton.LeftButton)
    dialog = plots.bar.dialog
    assert dialog.isVisible() and dialog.panel_list.count() == 5
    qtbot.mouseClick(dialog.buttons["addPanel"], Qt.MouseButton.LeftButton)
    dialog.title_edit.setText("Both losses")
    dialog.title_edit.textEdited.emit("Both losses")
    dialog.metrics_edit.setText("*/loss")
    dialog.metrics_edit.textEdited.emit("*/loss")
    assert dialog.matches.text() == "eval/loss, train/loss"  # what it shows, as typed
    for _ in range(5):
        qtbot.mouseClick(dialog.buttons["panelUp"], Qt.MouseButton.LeftButton)
    dialog.panel_list.setCurrentRow(dialog.chosen.titles().index("Throughput"))
    qtbot.mouseClick(dialog.buttons["removePanel"], Qt.MouseButton.LeftButton)
    dialog.panel_list.setCurrentRow(1)  # Loss, one place down
    qtbot.mouseClick(dialog.buttons["panelDown"], Qt.MouseButton.LeftButton)
    order = ["Both losses", "Learning rate", "Loss", "Gradient norm", "Evaluation"]
    assert dialog.chosen.titles() == order
    assert plots.panel_layout.titles()[0] == "Loss"  # nothing changes before OK
    qtbot.mouseClick(dialog.box.button(dialog.box.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert list(plots.plots) == order and saved[-1].titles() == order
    first = plots.plots["Both losses"]
    assert set(first.curves) == {"train/loss", "eval/loss"} and plots.loss is first
    # Default brings the plan's default back; Cancel keeps what is shown.
    qtbot.mouseClick(plots.bar.panels_button, Qt.MouseButton.LeftButton)
    dialog = plots.bar.dialog
    qtbot.mouseClick(dialog.buttons["defaultPanels"], Qt.MouseButton.LeftButton)
    assert dialog.chosen.titles() == default_layout().titles()
    qtbot.mouseClick(dialog.box.button(dialog.box.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert list(plots.plots) == order


def test_one_colour_per_series_in_every_panel_and_a_crosshair_across_them(qtbot):
    layout = PanelLayout(
        [Panel("Loss", ["*/loss"]), Panel("Train", ["train/*"]), Panel("Eval", ["eval/*"])]
    )
    plots = shown(qtbot)
    plots.set_panel_layout(layout, save=False)
    run = two_stage_run()
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    colours = {}
    for plot in plots.plots.values():
        for key, curve in plot.curves.items():
            colours.setdefault(key, set()).add(curve.opts["pen"].color().name())
    assert all(len(c) == 1 for c in colours.values()), colours  # the same in every panel
    assert len({c.pop() for c in colours.values()}) == len(colours) == 4  # none shared
    # The mouse over one panel: the crosshair and the values at that step in every panel.
    loss = plots.plots["Loss"]
    qtbot.waitUntil(lambda: all(p.isVisible() for p in plots.plots.values()))
    qtbot.waitUntil(lambda: loss.getViewBox().sceneBoundingRect().width() > 50)
    box = loss.getViewBox()
    at = box.mapViewToScene(QPointF(30.0, float(np.mean(box.viewRange()[1]))))
    loss.scene().sigMouseMoved.emit(at)  # as the mouse moving over the panel does
    for title, plot in plots.plots.items():
        assert plot._cursor.isVisible(), title
        assert plot._cursor.value() == pytest.approx(30.0, abs=0.2), title
    text = plots.plots["Train"]._readout.toPlainText()
    assert "train/loss: 3.0526  (step 30)" in text and "train/lr: 0.001  (step 30)" in text
    assert "eval/accuracy: 0.7  (step 40)" in plots.values_at(36.0)["Eval"]  # the nearest
    loss.scene().sigMouseMoved.emit(QPointF(-50, -50))  # and leaving it
    assert not loss._cursor.isVisible()
    assert not plots.plots["Eval"]._cursor.isVisible()


def test_x_axis_by_wall_time_or_tokens_only_when_the_run_has_them(qtbot):
    plots = shown(qtbot)
    run = two_stage_run()
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    item = plots.x_axis.model().item(2)
    assert not item.isEnabled() and "tokens-seen metric" in item.toolTip()
    plots.x_axis.setCurrentIndex(1)  # wall time: 6 s a step, in minutes from the first
    x = plots.loss.sources["train/loss"][0].x
    assert x[0] == 0 and x[-1] == pytest.approx(39 * 6 / 60)
    assert plots.loss.getPlotItem().getAxis("bottom").labelText == "wall time (min)"
    assert plots.panel_layout.x_axis == "wall"
    # Live, by wall time: a new point redraws every curve, so not more often than that
    # costs a few times over; the points that came meanwhile are drawn by the next redraw.
    run.add_points([(1, "train/loss", 21, 0.5)])
    run.add_clock(1, [21], [1000.0 + 41 * 6])
    plots._remap_after = float("inf")  # within the wait after the last full redraw
    assert plots.redraw(run, run.take_dirty(), 0.0) == 0
    assert plots.loss.sources["train/loss"][0].x[-1] == pytest.approx(39 * 6 / 60)
    plots._remap_after = 0.0
    assert plots.redraw(run, run.take_dirty(), 0.0) > 0  # nothing new: what was held back
    assert plots.loss.sources["train/loss"][0].x[-1] == pytest.approx(40 * 6 / 60)
    run = two_stage_run(tokens=True)
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    assert plots.x_axis.model().item(2).isEnabled()
    plots.x_axis.setCurrentIndex(2)
    assert plots.loss.sources["train/loss"][0].x[-1] == 40 * 64
    # Stage lines move with the axis (the first, at step 0, to the first tokens point).
    assert [line.value() for line in plots.loss._boundaries] == [64, 20 * 64]


def test_smoothing_is_drawn_exported_and_compared_with_the_raw_curve_faint_behind(qtbot, tmp_path):
    from app.qt.compare.qt_compare import QtCompareView
    from app.qt.monitor.qt_run_exports import write_panels_csv

    plots = shown(qtbot)
    run = two_stage_run()
    plots.smoothing.setValue(60)
    plots.redraw(run, set(run.series) | {"@stages"}, 0.6)
    levels, faint = plots.loss.sources["train/loss"]
    first = np.linspace(3, 1, 20)
    np.testing.assert_allclose(levels.y[:20], ema(first, 0.6)[0])
    np.testing.assert_allclose(faint.y[:20], first)  # the raw curve, behind
    assert plots.panel_layout.smoothing == 0.6
    monitor = type("Monitor", (), {"plots": plots})()  # what the export reads
    write_panels_csv(monitor, tmp_path / "panels.csv")
    rows = list(csv.DictReader(open(tmp_path / "panels.csv", encoding="utf-8")))
    loss = [r for r in rows if r["panel"] == "Loss" and r["metric"] == "train/loss"]
    assert len(loss) == 40 and float(loss[0]["value"]) == 3.0
    np.testing.assert_allclose([float(r["smoothed"]) for r in loss[:20]], ema(first, 0.6)[0])
    accuracy = [r for r in rows if r["metric"] == "eval/accuracy"]
    assert all(r["value"] == r["smoothed"] for r in accuracy)  # evaluation: never smoothed

    view = QtCompareView(lambda: None)
    qtbot.addWidget(view)
    view._loaded([("a", run, "name: a\n"), ("b", two_stage_run(), "name: b\n")])
    view.smoothing.setValue(60)
    levels, faint = view.plot.sources["a"]
    np.testing.assert_allclose(levels.y[:20], ema(first, 0.6)[0])
    np.testing.assert_allclose(faint.y[:20], first)
    view.tabs.setCurrentWidget(view.panels)  # the panels, one colour per run in each
    loss = view.panels.plots["Loss"]
    assert set(loss.curves) == {
        "a · train/loss",
        "a · eval/loss",
        "b · train/loss",
        "b · eval/loss",
    }
    pens = {n: c.opts["pen"] for n, c in loss.curves.items()}
    assert pens["a · train/loss"].color() == pens["a · eval/loss"].color()
    assert pens["a · train/loss"].color() != pens["b · train/loss"].color()
    assert pens["a · train/loss"].style() != pens["a · eval/loss"].style()
    np.testing.assert_allclose(loss.sources["a · train/loss"][0].y[:20], ema(first, 0.6)[0])
    # By wall time (each run's own clock); tokens: no run has them, so it is greyed out.
    assert not view.panels.x_axis.model().item(2).isEnabled()
    view.panels.x_axis.setCurrentIndex(1)
    loss = view.panels.plots["Loss"]
    assert loss.sources["b · train/loss"][0].x[-1] == pytest.approx(39 * 6 / 60)
    assert view.panel_layout.x_axis == "wall"
    empty = view.panels.plots["Gradient norm"]  # no run has it: its hint, not bare axes
    assert not empty.hint.isHidden() and not empty.getPlotItem().getAxis("bottom").isVisible()
    view.panels.x_axis.setCurrentIndex(0)
    loss = view.panels.plots["Loss"]
    loss.hovered.emit(30.0)  # the crosshair of one panel in the others
    assert "b: 0.5  (step 30)" in view.panels.plots["Evaluation"]._readout.toPlainText()


def test_the_monitor_keeps_the_panels_per_experiment_in_the_workspace(qtbot, tmp_path, monkeypatch):
    from app.qt.monitor.qt_run_monitor import QtRunMonitor
    from engine.store import Store, queries
    from engine.store.metrics import add_metrics
    from tests.many_runs import build

    store = Store.open(build(tmp_path / "ws", runs=2))
    monitor = QtRunMonitor(lambda: store)
    qtbot.addWidget(monitor)
    run_ids = [r.id for r in queries.list_runs(store)]
    # The loss of the second stage, a point every 5 s: the x axis by wall time dates it.
    add_metrics(
        store, run_ids[0], [(1, "train/loss", s, 1 / s, 10_000 + 5000 * s) for s in range(1, 13)]
    )
    monitor.open_run(run_ids[0])
    qtbot.waitUntil(lambda: not monitor.loading, timeout=30_000)
    assert monitor.plots.panel_layout == default_layout(["pretrain", "train"])
    monitor.plots.x_axis.setCurrentIndex(1)  # wall time, read from the record
    x = monitor.plots.loss.sources["train/loss"][0].x
    assert x[0] == 0 and x[-1] == pytest.approx(11 * 5 / 60)
    chosen = PanelLayout([Panel("Accuracy", ["eval/accuracy*"])], "wall", 0.3)
    monitor.plots.set_panel_layout(chosen)
    path = tmp_path / "ws" / "views" / "exp-0.json"
    saved = json.loads(path.read_text())
    assert saved["panels"][0]["metrics"] == ["eval/accuracy*"] and saved["x_axis"] == "wall"
    monitor.open_run(run_ids[1])  # another run of the same experiment: the same view
    qtbot.waitUntil(lambda: not monitor.loading, timeout=30_000)
    assert list(monitor.plots.plots) == ["Accuracy"] and monitor.plots.smoothing.value() == 30
    assert monitor.plots.x_axis.currentData() == "wall"
    assert "eval/accuracy" in monitor.plots.plots["Accuracy"].curves
    assert (
        queries.get_run(store, run_ids[1]).plan_text == queries.get_run(store, run_ids[0]).plan_text
    )
    # Export -> Panel data as CSV… writes what the panels draw, where the person chose.
    target = tmp_path / "panels.csv"
    monkeypatch.setattr(
        "PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), "")
    )
    [action] = [a for a in monitor.export_button.menu().actions() if a.text().startswith("Panel")]
    action.trigger()
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert {r["metric"] for r in rows} == {"eval/accuracy"} and rows[0]["panel"] == "Accuracy"
    monitor.close_run()
    store.close()


def test_reused_steps_stay_veiled_in_new_panels_and_on_another_axis(qtbot):
    from app.qt.monitor.qt_run_monitor import QtRunMonitor

    monitor = QtRunMonitor(lambda: None)
    qtbot.addWidget(monitor)
    run = two_stage_run()
    run.update_stage({"idx": 0, "status": "reused", "reused_from": {"run": "x", "stage": 0}})
    monitor.run = run
    monitor._redraw()

    def veiled():
        return {id(plot) for plot, _ in monitor._veils}

    assert veiled() == {id(p) for p in monitor.plots.plots.values()} and len(veiled()) == 5
    chosen = PanelLayout([Panel("Loss", ["*/loss"]), Panel("LR", ["train/lr"])])
    monitor.plots.set_panel_layout(chosen)
    monitor._redraw()
    assert veiled() == {id(p) for p in monitor.plots.plots.values()} and len(veiled()) == 2
    monitor.plots.x_axis.setCurrentIndex(1)  # by wall time: the veil moves with the steps
    monitor._redraw()
    x0, x1, _ = monitor.reused_spans[0]
    assert (x0, x1) == (0.0, pytest.approx(19 * 6 / 60))  # steps 1..20, 6 s apart
    monitor.close_run()
