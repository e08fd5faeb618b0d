"""The monitor's plots as a person reads them (issue 27): one colour per series for the
whole run, legends and stage names that never cover or leave the plot, the small plots on
the loss plot's steps, y ranges that fit what the series can be, a line instead of empty
axes, and pause / resume and wrapped lines in the run log."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.run_series import RunSeries
from app.qt.monitor.qt_run_plots import QtRunPlots
from engine.channel.messages import parse_message

JOINT_KEYS = (
    "train/loss",
    "train/loss/sentiment",
    "train/loss/intensity",
    "train/loss_mutual",
    "train/loss/tiny",
    "train/loss/mini",
    "train/lr",
    "train/grad_norm",
    "perf/samples_per_s",
    "eval/loss",
    "eval/loss/sentiment",
    "eval/loss/intensity",
    "eval/loss/tiny",
    "eval/loss/mini",
    "eval/accuracy/sentiment",
    "eval/f1/sentiment",
    "eval/mae/intensity",
    "eval/accuracy/tiny",
    "eval/accuracy/mini",
    "eval/f1/tiny",
    "eval/f1/mini",
    "test/accuracy/tiny",
)
STAGES = (("mlm", 0, 120), ("multitask", 120, 60), ("mutual", 180, 40), ("ensemble", 220, 0))


def joint_run(keys=JOINT_KEYS) -> RunSeries:
    """A run shaped as the joint template's: four stages, the last an ensemble."""
    run = RunSeries("r", status="finished")
    for idx, (name, start, steps) in enumerate(STAGES):
        run.update_stage(
            {
                "idx": idx,
                "name": name,
                "kind": "ensemble" if name == "ensemble" else "train",
                "status": "finished",
                "global_step_start": start,
                "steps_done": steps,
            }
        )
    rng = np.random.default_rng(0)
    for key in keys:
        stage = 0 if key in ("train/loss", "eval/loss", "train/lr", "train/grad_norm") else 1
        steps = np.arange(1, STAGES[stage][2] + 1, dtype=float)
        if key.startswith("eval/"):
            steps = steps[::10]
        if key.startswith("test/"):
            steps = steps[-1:]
        if key == "train/lr":
            values = np.linspace(5e-4, 4.5e-4, steps.size)
        elif "accuracy" in key or "f1" in key:
            values = np.linspace(0.05, 1.0, steps.size)
        else:
            values = np.abs(rng.normal(2, 1, steps.size))
        run.add_series(key, stage, steps, values)
        if key == "eval/loss":  # the ensemble is evaluated once, where it starts
            run.add_series(key, 3, [0.0], [1.0])
    return run


def shown_plots(qtbot, size=(1000, 560)) -> QtRunPlots:
    plots = QtRunPlots()
    qtbot.addWidget(plots)
    plots.resize(*size)
    plots.show()
    qtbot.waitExposed(plots)
    return plots


def pen(plot, key):
    return plot.curves[key].opts["pen"].color().name()


def test_every_series_of_a_joint_run_has_its_own_colour_in_every_plot(qtbot):
    plots = shown_plots(qtbot)
    run = joint_run()
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    colours = {
        key: pen(plot, key)
        for plot in plots.plots.values()
        for key in plot.curves
        if not key.startswith("test/")
    }
    assert len(colours) == len(JOINT_KEYS) - 1
    assert len(set(colours.values())) == len(colours), colours
    evaluation = plots.plots["Evaluation"]
    # A test marker wears its eval curve's colour; the colours follow the series, not the
    # plot or the order in which curves arrive.
    assert pen(evaluation, "test/accuracy/tiny") == colours["eval/accuracy/tiny"]
    for key, colour in colours.items():
        assert plots.colours.colour(key).name() == colour
    assert pen(plots.loss, "train/loss") != pen(plots.loss, "eval/loss")


def test_the_small_plots_show_the_loss_plots_steps_after_data_and_zoom(qtbot):
    plots = shown_plots(qtbot)
    run = joint_run(("train/loss", "train/lr", "eval/accuracy/tiny", "perf/samples_per_s"))
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    qtbot.wait(20)

    def x_ranges():
        return {
            t: np.round(p.getViewBox().viewRange()[0], 6).tolist() for t, p in plots.plots.items()
        }

    ranges = x_ranges()
    assert len({tuple(r) for r in ranges.values()}) == 1, ranges
    plots.loss.setXRange(30, 90, padding=0)  # the person zooms the loss plot
    assert all(r == [30, 90] for r in x_ranges().values()), x_ranges()
    plots.plots["Learning rate"].setXRange(10, 50, padding=0)  # or a small one
    assert all(r == [10, 50] for r in x_ranges().values()), x_ranges()
    plots.show_all()
    qtbot.wait(20)
    ranges = x_ranges()
    assert len({tuple(r) for r in ranges.values()}) == 1 and ranges["Loss"][1] >= 120


def test_y_ranges_fit_what_the_series_can_be(qtbot):
    plots = shown_plots(qtbot)
    run = joint_run(("train/loss", "train/lr", "eval/accuracy/tiny", "perf/samples_per_s"))
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    qtbot.wait(20)
    low, high = plots.plots["Evaluation"].getViewBox().viewRange()[1]
    assert 0 <= low < high <= 1
    for title in ("Loss", "Learning rate", "Throughput"):
        assert plots.plots[title].getViewBox().viewRange()[1][0] >= 0, title
    # The learning rate's ticks carry their own magnitude: no "(x1e-06)" beside the unit.
    axis = plots.plots["Learning rate"].getAxis("left")
    assert "x1e" not in axis.labelString()
    assert axis.tickStrings([4.5e-4, 4.75e-4, 5e-4], 1.0, 2.5e-5) == [
        "4.50e-4",
        "4.75e-4",
        "5.00e-4",
    ]
    assert axis.tickStrings([0.5, 1.0], 1.0, 0.5) == ["0.5", "1.0"]


def test_legends_and_stage_names_stay_off_the_data_and_the_axes(qtbot):
    for size in ((1000, 560), (730, 420)):
        plots = shown_plots(qtbot, size)
        run = joint_run()
        # Back-filled a series at a time, drawn between them, as a re-attached window does.
        for key in JOINT_KEYS:
            plots.redraw(run, {key, "@stages"}, 0.0)
            qtbot.wait(1)
        qtbot.wait(50)
        for title in ("Loss", "Evaluation"):
            plot = plots.plots[title]
            item = plot.getPlotItem()
            legend = plot.legend.sceneBoundingRect()
            assert plot.legend.isVisible() and legend.width() > 0
            for part in (item.getViewBox(), item.getAxis("left"), item.getAxis("bottom")):
                assert not legend.intersects(part.sceneBoundingRect()), (title, size, part)
            # Entries one under the other, none over another.
            rows = [e.geometry() for e in plot.legend.entries]
            assert all(not a.intersects(b) for i, a in enumerate(rows) for b in rows[i + 1 :])
        # Every stage's name lies inside the loss plot, none over another.
        box = plots.loss.getViewBox().sceneBoundingRect()
        names = [line.label for line in plots.loss._boundaries]
        assert [n.toPlainText() for n in names] == [s[0] for s in STAGES]
        rects = [n.mapRectToScene(n.boundingRect()) for n in names]
        for name, rect in zip(names, rects, strict=True):
            assert box.adjusted(-1, -1, 1, 1).contains(rect), (name.toPlainText(), rect, box)
        assert all(not a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :]), rects
        # Nothing of a plot is cut off on the right.
        for plot in plots.plots.values():
            assert plot.getPlotItem().sceneBoundingRect().right() <= plot.viewport().width() + 1


def test_a_legend_entry_hides_its_curve(qtbot):
    from PySide6.QtCore import Qt

    plots = shown_plots(qtbot)
    run = joint_run()
    plots.redraw(run, set(run.series), 0.0)
    entry = next(e for e in plots.plots["Evaluation"].legend.entries if e.text == "mae/intensity")
    curve = plots.plots["Evaluation"].curves["eval/mae/intensity"]
    assert not curve.isVisible()  # not a rate: starts hidden
    qtbot.mouseClick(entry, Qt.MouseButton.LeftButton)
    assert curve.isVisible()
    qtbot.wait(20)
    # Now that a curve beyond [0, 1] shows, the axis is no longer held to [0, 1].
    assert plots.plots["Evaluation"].getViewBox().viewRange()[1][1] > 1


def test_empty_plots_say_so_in_a_line(qtbot):
    plots = shown_plots(qtbot)
    run = joint_run(("train/loss",))
    plots.redraw(run, set(run.series) | {"@stages"}, 0.0)
    throughput = plots.plots["Throughput"]
    assert throughput.hint.isVisible() and "throughput" in throughput.hint.text().lower()
    assert not throughput.getPlotItem().getAxis("left").isVisible()
    assert not plots.loss.hint.isVisible() and plots.loss.getPlotItem().getAxis("left").isVisible()


@pytest.fixture
def monitor(qtbot):
    from app.qt.monitor.qt_run_monitor import QtRunMonitor

    view = QtRunMonitor(lambda: None)
    qtbot.addWidget(view)
    view.run = RunSeries("r", status="running")
    view._set_status("running")
    yield view
    view.close_run()


def test_pause_and_resume_are_in_the_run_log(monitor):
    for status in ("paused", "running", "stopping", "stopped"):
        monitor._message(parse_message({"type": "status", "status": status}))
    monitor._redraw()
    text = monitor.console.toPlainText()
    assert "paused" in text and "resumed" in text and "stop requested" in text
    assert text.index("paused") < text.index("resumed") < text.index("stop requested")


def test_wrapped_log_lines_continue_under_the_message(qtbot):
    from app.qt.monitor.qt_run_log import HANGING, TIME_WIDTH, QtRunLog
    from app.qt.monitor.qt_run_log import log_line as _log_line

    log = QtRunLog()
    qtbot.addWidget(log)
    log.resize(640, 300)
    log.show()
    line = _log_line({"kind": "model", "message": "word " * 40, "wall_ms": 0})
    assert line.index("word") == HANGING
    log.append_lines(line)
    rows = log.toPlainText().split("\n")
    assert len(rows) > 1 and all(len(r) <= log.columns() for r in rows)
    assert all(r.startswith(" " * HANGING) and r[HANGING] != " " for r in rows[1:])
    # A narrow log (the side panel at 1024 px) wraps again, under the kind column, never
    # under the time.
    log.resize(300, 300)
    qtbot.wait(10)
    narrow = log.toPlainText().split("\n")
    assert len(narrow) > len(rows) and all(len(r) <= log.columns() for r in narrow)
    assert all(r.startswith(" " * TIME_WIDTH) for r in narrow[1:])
