"""The run log and the Compare tab as people read them (issue 20): the log keeps following
while hidden and past its line limit, its columns hold, and Compare says what to do and
marks every run's stages."""

from __future__ import annotations


def test_the_log_keeps_following_while_hidden_and_past_its_line_limit(qtbot):
    from PySide6.QtWidgets import QLabel, QTabWidget

    from app.qt.monitor import qt_run_log
    from app.qt.monitor.qt_run_log import QtRunLog

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    log = QtRunLog()
    log.setMaximumBlockCount(200)  # the limit a long run reaches, made small
    tabs.addTab(QLabel("GPU"), "GPU")
    tabs.addTab(log, "Log")
    tabs.setCurrentIndex(1)
    tabs.resize(400, 300)
    tabs.show()
    bar = log.verticalScrollBar()

    def at_end() -> bool:
        qtbot.wait(5)
        return bar.maximum() > 0 and bar.value() == bar.maximum()

    log.append_lines("\n".join(f"line {i}" for i in range(50)))
    assert at_end()
    tabs.setCurrentIndex(0)  # another side tab while lines arrive
    for i in range(50, 150):
        log.append_lines(f"line {i}")
    tabs.setCurrentIndex(1)
    assert at_end()
    for i in range(150, 400):  # past the line limit
        log.append_lines(f"line {i}")
    assert at_end() and log.toPlainText().endswith("line 399")
    # scrolled up by the person: stays where it is; back at the bottom: follows again
    bar.triggerAction(bar.SliderAction.SliderPageStepSub)
    log.append_lines("new")
    assert not at_end()
    bar.triggerAction(bar.SliderAction.SliderToMaximum)
    log.append_lines("newer")
    assert at_end()
    assert qt_run_log.MAX_LINES >= 10_000


def test_the_logs_width_does_not_depend_on_how_many_lines_it_holds(qtbot):
    """The log wraps its lines to its width; a scroll bar that appeared once the lines
    filled the view narrowed it, the narrower log rewrapped (and for a moment held no
    lines), the bar went, and so on: the window hung at 100 % CPU (a CI run, when a
    killed run's lines came in). Its width, and so its wrapping, must not move."""
    from app.qt.monitor.qt_run_log import QtRunLog

    log = QtRunLog()
    qtbot.addWidget(log)
    log.resize(300, 120)
    log.show()
    qtbot.wait(5)
    empty = (log.viewport().width(), log.columns())
    for n in range(30):  # from no scroll bar needed to a full view
        log.append_lines(f"12:00:{n:02d}  status  " + "word " * (n % 9))
        qtbot.wait(1)
        assert (log.viewport().width(), log.columns()) == empty, f"after {n + 1} lines"


def test_log_lines_keep_their_columns():
    from app.qt.monitor.qt_run_log import log_line as _log_line

    a = _log_line({"kind": "checkpoint", "message": "checkpoint at step 100", "wall_ms": 0})
    b = _log_line({"kind": "eval", "message": "accuracy 0.81", "wall_ms": 0})
    assert "checkpoint checkpoint" not in a
    assert a.index("checkpoint at") == b.index("accuracy")


def fake_run(run_id: str, stage_steps: list[int]):
    from app.model.run_series import RunSeries

    run = RunSeries(run_id, status="finished")
    start = 0
    for idx, steps in enumerate(stage_steps):
        run.update_stage(
            {
                "idx": idx,
                "name": f"s{idx}",
                "status": "finished",
                "steps_done": steps,
                "global_step_start": start,
            }
        )
        run.add_series("train/loss", idx, list(range(1, steps + 1)), [1.0] * steps)
        start += steps
    return run


def test_compare_says_what_to_do_marks_every_runs_stages_and_shows_short_runs(qtbot):
    from app.qt.compare.qt_compare import QtCompareView

    view = QtCompareView(lambda: None)
    qtbot.addWidget(view)
    assert "Loading" not in view.status.text() and "Compare" in view.status.text()
    long, short = fake_run("a", [100, 300]), fake_run("b", [40, 60])
    view._loaded([("long", long, "name: a\n"), ("short", short, "name: b\n")])
    marks = {(x, name) for x, name, _ in view.boundary_marks()}
    assert marks == {(0.0, "s0"), (100.0, "s1"), (40.0, "s1")}
    shown = {line.value() for line in view.plot._boundaries}
    assert shown == {0.0, 100.0, 40.0}
    assert view.plot.curves["short"].zValue() > view.plot.curves["long"].zValue()
    # the legend of long run labels sits under the axis, not over the curves
    view.resize(900, 600)
    view.show()
    qtbot.wait(50)
    box = view.plot.getPlotItem().vb.sceneBoundingRect()
    assert not view.plot.legend.sceneBoundingRect().intersects(box)
    view._loaded([])
    assert "Compare" in view.status.text()
