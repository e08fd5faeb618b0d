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
    return [h for item in items for h in item.opts["height"]]


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
    assert view.bars.getPlotItem().getAxis("left").labelText == "loss"
    view.grab().save(str(tmp_path / "ensemble-loss.png"))

    view.show_reports({"together": report({"0-a": {}, "1-b": {}}, {})})
    assert "No metric was evaluated" in view.caption.text() and bars(view) == []
