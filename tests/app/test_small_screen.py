"""The window on a small screen (1024x640): every tab usable, key widgets wholly visible and
unclipped, and a small saved layout that does not squeeze a large window."""

from __future__ import annotations

from tests.app.test_window_use import record_demo_run

KEY_WIDGETS = {
    0: ("stagePalette", "planView", "stageInspector", "planName", "runButton", "bottomTabs"),
    1: (
        "experimentTable",
        "experimentSearch",
        "openRunButton",
        "cloneButton",
        "compareButton",
        "deleteButton",
        "experimentNotes",
    ),
    2: (
        "lossPlot",
        "smoothingSlider",
        "monitorSideTabs",
        "overallProgress",
        "pauseButton",
        "resumeButton",
        "stopButton",
        "exportButton",
        "plot_evaluation",
    ),
    3: ("comparePlot", "compareMetric", "compareAlign", "compareStatus"),
}


def assert_usable(window, name: str) -> None:
    from PySide6.QtWidgets import QWidget

    widget = window.findChild(QWidget, name)
    assert widget is not None, name
    assert widget.isVisible(), name
    least = max(widget.minimumSizeHint().width(), widget.minimumWidth())
    assert widget.width() >= least, (name, widget.width(), least)
    # unclipped: wholly inside the window and not cut by a parent
    top_left = widget.mapTo(window, widget.rect().topLeft())
    assert window.rect().contains(top_left) and window.rect().contains(
        widget.mapTo(window, widget.rect().bottomRight())
    ), name
    assert unclipped_size(widget) == widget.size(), name


def unclipped_size(widget):
    """The size of the part of `widget` that its ancestors leave in view."""
    from PySide6.QtCore import QRect

    rect = QRect(widget.mapToGlobal(widget.rect().topLeft()), widget.size())
    parent = widget.parentWidget()
    while parent is not None:
        rect = rect.intersected(QRect(parent.mapToGlobal(parent.rect().topLeft()), parent.size()))
        parent = parent.parentWidget()
    return rect.size()


def test_every_tab_is_usable_at_1024_by_640(window, qtbot):
    run_id = record_demo_run(window)
    for index in (1, 2, 3, 0):  # the editor last: the other tabs must not hold it wide
        window.runs.show_tab(index)
        if index == 2:
            window.runs.monitor.open_run(run_id)
        window.resize(1024, 640)
        qtbot.wait(50)
        assert (window.width(), window.height()) == (1024, 640), index
        for name in KEY_WIDGETS[index]:
            assert_usable(window, name)
        if index == 2:
            side = window.runs.monitor.side
            # Whole titles of the tabs shown (Ensemble shows once an ensemble reports).
            for i in [i for i in range(side.count()) if side.isTabVisible(i)]:
                text = side.tabBar().fontMetrics().horizontalAdvance(side.tabText(i))
                assert side.tabBar().tabRect(i).width() >= text, side.tabText(i)
                assert side.tabBar().rect().contains(side.tabBar().tabRect(i))
            window.runs.monitor.close_run()
    palette = window.palette_list
    assert palette.width() >= 150  # titles and summaries readable
    for row in range(3):  # the inspector's form fits its dock (no sideways scrolling)
        window.plan_view.select_row(row)
        qtbot.wait(20)
        body = window.inspector.widget()
        assert body.minimumSizeHint().width() <= window.inspector.viewport().width()
        assert body.width() <= window.inspector.viewport().width()
    assert window.plan_view.width() >= window.inspector.minimumWidth()
    window.resize(1400, 880)
    qtbot.wait(50)
    for name in KEY_WIDGETS[0]:
        assert_usable(window, name)


def test_a_small_saved_layout_does_not_squeeze_a_large_window(qtbot, tmp_path):
    from app import create_main_window
    from tests.app.conftest import mark_saved

    small = create_main_window(tmp_path / "ws")
    qtbot.addWidget(small, before_close_func=mark_saved)
    small.resize(1024, 640)
    small.show()
    small.runs.show_tab(2)  # the monitor was shown once
    small.runs.show_tab(0)
    qtbot.wait(50)
    mark_saved(small)
    small.close()
    large = create_main_window(tmp_path / "ws")
    qtbot.addWidget(large, before_close_func=mark_saved)
    large.show()
    large.resize(1600, 1000)
    qtbot.wait(50)
    assert large.width() == 1600
    docks = large.palette_dock.width() + large.inspector_dock.width()
    assert large.plan_view.width() >= 0.35 * 1600 and docks <= 0.62 * 1600
    for name in KEY_WIDGETS[0]:
        assert_usable(large, name)


def test_the_main_tabs_show_whole_at_1024_by_640(window, qtbot):
    from app.model.plan_document import PlanDocument
    from engine.resources import plan_templates

    sweep = next(p for p in plan_templates() if p.stem == "sweep")
    for doc in (window.doc, PlanDocument.from_file(sweep, as_template=True)):
        window.set_document(doc)  # the sweep template badges the Plan tab
        window.resize(1024, 640)
        qtbot.wait(20)
        bar = window.tabs.tabBar()
        for i in range(bar.count()):
            words = bar.fontMetrics().horizontalAdvance(bar.tabText(i))
            assert bar.tabRect(i).width() >= words, bar.tabText(i)
            assert bar.rect().contains(bar.tabRect(i)), bar.tabText(i)  # no scroll arrows
