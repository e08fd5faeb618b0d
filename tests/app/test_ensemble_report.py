"""The ensemble report never shows a metric that was not recorded as if it were a score
(issue 27): it says in words what is missing, and draws no empty bars."""

from __future__ import annotations

import pyqtgraph as pg

from app.qt.monitor.qt_ensemble_report import QtEnsembleReport


def report(members, ensemble):
    return {
        "combiner": "average",
        "split": "test",
        "rows": 72,
        "members": members,
        "ensemble": ensemble,
        "weights": None,
        "labels": ["negative", "positive"],
    }


def bars(view: QtEnsembleReport) -> list[float]:
    items = [i for i in view.bars.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    # Flat bars, first row on top: read top down, as the table lists them.
    found = [
        (y, w) for item in items for y, w in zip(item.opts["y"], item.opts["width"], strict=True)
    ]
    return [w for _, w in sorted(found, reverse=True)]


def test_the_report_says_in_words_what_a_member_did_not_record(qtbot, tmp_path):
    view = QtEnsembleReport()
    qtbot.addWidget(view)
    view.resize(700, 520)
    view.show()
    members = {"0-a": {"loss": 0.5, "accuracy": 0.8}, "1-b": {"loss": 0.6}}
    view.show_reports({"together": report(members, {"loss": 0.4, "accuracy": 0.85})})
    text = view.caption.text()
    assert "1-b recorded no accuracy" in text
    assert view.table.item(1, 0).text() == "—"  # column accuracy, row 1-b
    assert bars(view) == [0.8, 0.85]  # no bar for 1-b, rather than an empty one
    view.grab().save(str(tmp_path / "ensemble-missing.png"))

    # Accuracy not evaluated at all (eval.metrics: [loss]): said, and the bars show loss.
    losses = {"0-a": {"loss": 0.5}, "1-b": {"loss": 0.6}}
    view.show_reports({"together": report(losses, {"loss": 0.4})})
    text = view.caption.text()
    assert "Accuracy was not evaluated" in text and "the bars show loss" in text
    assert bars(view) == [0.5, 0.6, 0.4]
    assert view.bars.getPlotItem().getAxis("bottom").labelText == "loss"
    view.grab().save(str(tmp_path / "ensemble-loss.png"))

    view.show_reports({"together": report({"0-a": {}, "1-b": {}}, {})})
    assert "No metric was evaluated" in view.caption.text() and bars(view) == []


def test_long_member_names_stay_whole_and_apart_in_a_narrow_panel(qtbot):
    view = QtEnsembleReport()
    qtbot.addWidget(view)
    view.resize(260, 420)  # the monitor's side panel at 1024x640
    view.show()
    names = ["0-mutual-tiny", "1-mutual-mini", "2-sentiment-long"]
    members = {n: {"accuracy": 0.9 - i / 20} for i, n in enumerate(names)}
    view.show_reports({"pair": report(members, {"accuracy": 0.9})})
    axis = view.bars.getPlotItem().getAxis("left")
    ticks = axis._tickLevels[0]  # (position, text), one row each: they cannot overlap
    assert sorted(text for _, text in ticks) == sorted([*names, "ensemble"])
    assert len({pos for pos, _ in ticks}) == 4
    from PySide6.QtGui import QFontMetrics

    font = axis.style.get("tickFont") or view.font()
    widest = max(QFontMetrics(font).horizontalAdvance(t) for _, t in ticks)
    qtbot.waitUntil(lambda: axis.width() >= widest, timeout=2000)  # after the layout pass
