"""The experiment browser, clone and compare on runs a real engine finished: the table lists
them with their results, search and status filter narrow it, tags and notes are saved,
clone opens the plan in the editor with its parent recorded, compare overlays both runs'
curves and diffs their plans, delete asks and removes the files too; monitor exports."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app import create_main_window
from app.model.runs_table import Column
from engine.store import Store, queries
from tests.app.conftest import mark_saved
from tests.app.test_monitor import DATA_DIR

pytestmark = pytest.mark.slow

PLAN = f"""
name: tiny
stages:
  - name: mlm
    kind: pretrain
    model: {{builtin: bert-tiny, vocab_size: 300}}
    data: {{path: {DATA_DIR / "corpus.txt"}, max_length: 16, eval_ratio: 0.05}}
    batch_size: 8
    max_steps: 12
    eval: {{every_steps: 6, metrics: [loss, accuracy]}}
  - name: cls
    kind: train
    model: {{from_stage: mlm}}
    data: {{path: {DATA_DIR / "reviews.csv"}, max_length: 16, eval_ratio: 0.1}}
    batch_size: 8
    max_steps: LAST
    eval: {{every_steps: 10, metrics: [loss, accuracy, confusion_matrix]}}
"""


@pytest.fixture(scope="module")
def finished_ws(tmp_path_factory) -> tuple[Path, list[str]]:
    """A workspace with two finished runs (two experiments: 20 and 30 classifier steps)."""
    root = tmp_path_factory.mktemp("browse")
    ws = root / "ws"
    run_ids = []
    for last in (20, 30):
        plan = root / f"tiny-{last}.yaml"
        plan.write_text(PLAN.replace("LAST", str(last)))
        subprocess.run(
            [sys.executable, "-m", "engine.cli", "--workspace", str(ws), "run", str(plan)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    store = Store.open(ws / "stagelab.db")
    run_ids = [r.id for r in sorted(queries.list_runs(store), key=lambda r: r.created_ms)]
    assert [queries.get_run(store, r).status for r in run_ids] == ["finished", "finished"]
    return ws, run_ids


@pytest.fixture
def window(qtbot, finished_ws):
    win = create_main_window(finished_ws[0])
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1400, 900)
    win.show()
    win.runs.show_tab(1)
    return win


def visible_rows(browser) -> list[str]:
    model, out = browser.proxy, []
    for r in range(model.rowCount()):
        parent = model.index(r, 0)
        out.append(parent.data())
        out += [model.index(c, 0, parent).data() for c in range(model.rowCount(parent))]
    return out


def test_table_lists_runs_with_results_and_filters(window, finished_ws):
    browser = window.runs.browser
    assert browser.view.objectName() == "experimentTable"
    rows = visible_rows(browser)
    assert len(rows) == 4  # two experiments, one run each
    run_item = browser._items[finished_ws[1][0]]
    texts = [item.text() for item in run_item]
    assert texts[1] == "finished" and texts[4] == "2/2" and texts[5].startswith("accuracy ")
    browser.search.setText(finished_ws[1][1][:8])
    assert len(visible_rows(browser)) == 2  # the run and its experiment
    browser.search.setText("")
    browser.status_filter.setCurrentIndex(browser.status_filter.findData("interrupted"))
    assert visible_rows(browser) == []
    browser.status_filter.setCurrentIndex(browser.status_filter.findData("finished"))
    assert len(visible_rows(browser)) == 4


def test_runs_table_shows_real_runs_final_and_best(qtbot, window, finished_ws):
    """The Runs view (issue 31, item 4) on runs the engine recorded: final and best
    eval/accuracy of the classifier stage, and a plan-setting search."""
    browser = window.runs.browser
    table = browser.runs_table
    browser.views.setCurrentWidget(table)
    qtbot.waitUntil(lambda: table.model.rowCount() == 2, timeout=10_000)
    c = table.model.columns.index(Column("final", "eval/accuracy"))
    assert all(table.model.index(r, c).data().endswith(" (cls)") for r in range(2))
    for run in table.model.shown:
        final, best = run.final["eval/accuracy"], run.best["eval/accuracy"]
        assert final[1] == best[1] == 1 and best[0] >= final[0]
    table.search_box.setText("cls.max_steps>=30 status:finished")
    table.apply_search()
    assert [r.id for r in table.model.shown] == [finished_ws[1][1]]


def test_tags_and_notes_are_saved(qtbot, window, finished_ws):
    browser = window.runs.browser
    exp_id = queries.get_run(window.store(), finished_ws[1][0]).experiment_id
    browser.select(exp_id)
    browser.tags.setText("baseline, tiny")
    browser.tags.editingFinished.emit()
    browser.notes.setPlainText("first try")
    qtbot.waitUntil(
        lambda: queries.get_experiment(window.store(), exp_id).notes == "first try", timeout=5000
    )
    assert queries.get_experiment(window.store(), exp_id).tags == ("baseline", "tiny")
    browser.search.setText("baseline")
    assert len(visible_rows(browser)) == 2


def test_clone_opens_the_plan_in_the_editor_with_its_parent(
    qtbot, window, finished_ws, monkeypatch
):
    from engine.launch import runs as launch

    store = window.store()
    browser = window.runs.browser
    source = queries.get_run(store, finished_ws[1][0]).experiment_id
    before = {e.id for e in queries.list_experiments(store)}
    browser.select(source)
    qtbot.mouseClick(browser.clone_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(browser.clone_button, Qt.MouseButton.LeftButton)
    # clicking Clone leaves no empty experiment behind; the title says what Run records into
    assert {e.id for e in queries.list_experiments(store)} == before
    assert window.runs.tabs.currentIndex() == 0  # the editor
    assert window.windowTitle().startswith("tiny (clone)")
    assert window.plan_header.name.text() == "tiny (clone)"
    assert window.doc.stage_names() == ["mlm", "cls"]
    assert window.doc.stage(1)["max_steps"] == 20
    assert window.plan_view.model().rowCount() == 2
    # the first run records the clone, with its parent, under the plan's name
    monkeypatch.setattr(launch, "start_engine", lambda *a, **k: None)
    window.run_plan()
    clone = queries.get_experiment(store, window.experiment_id)
    assert clone.parent_id == source and clone.id not in before
    assert clone.name == "tiny (clone)" and len(clone.runs) == 1
    window.runs.monitor.close_run()


def test_compare_overlays_both_runs_and_diffs_the_plans(qtbot, window, finished_ws):
    browser = window.runs.browser
    selection = browser.view.selectionModel()
    for run_id in finished_ws[1]:
        index = browser.proxy.mapFromSource(browser._items[run_id][0].index())
        selection.select(index, selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
    assert browser.compare_button.isEnabled()
    qtbot.mouseClick(browser.compare_button, Qt.MouseButton.LeftButton)
    view = window.runs.compare_view
    qtbot.waitUntil(lambda: len(view.runs) == 2, timeout=10_000)
    # The second run reused the first one's mlm stage (same settings and data): drawn
    # dashed, from the first run's points.
    [reused] = [name for name in view.plot.curves if name.endswith(" (reused)")]
    assert len(view.plot.curves) == 3
    assert view.plot.sources[reused][0].x.tolist() == list(range(1, 13))
    ends = sorted(float(levels.x[-1]) for levels, _ in view.plot.sources.values())
    assert ends == [12, 12 + 20, 12 + 30]  # by global step
    view.align.setCurrentIndex(view.align.findData(1))  # the classifier stage, from step 1
    ends = sorted(float(levels.x[-1]) for levels, _ in view.plot.sources.values())
    assert ends == [20, 30]
    sides = {view.left_text.toPlainText(), view.right_text.toPlainText()}
    assert {("max_steps: 20" in s, "max_steps: 30" in s) for s in sides} == {
        (True, False),
        (False, True),
    }
    assert "#ffe8a8" in view.left_text.toHtml().lower()  # the changed line is marked


def test_monitor_exports_csv_png_and_plan(qtbot, window, finished_ws, tmp_path):
    from app.qt.monitor.qt_run_exports import write_metrics_csv, write_plan_yaml, write_plot_png

    run_id = finished_ws[1][0]
    window.runs.open_run(run_id)
    monitor = window.runs.monitor
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    assert monitor.run.status == "finished" and not monitor.resume_button.isEnabled()
    assert monitor.confusion.table.rowCount() == 2  # negative, positive
    write_metrics_csv(monitor, tmp_path / "m.csv")
    with open(tmp_path / "m.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["key"] == "train/loss" for r in rows) == 12 + 20
    write_plot_png(monitor, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 10_000
    write_plan_yaml(monitor, tmp_path / "plan.yaml")
    assert "max_steps: 20" in (tmp_path / "plan.yaml").read_text()


def test_delete_asks_and_removes_records_and_files(qtbot, window, finished_ws, monkeypatch):
    browser = window.runs.browser
    run_id = finished_ws[1][1]
    run = queries.get_run(window.store(), run_id)
    assert Path(run.run_dir).is_dir()
    browser.select(run.experiment_id)
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: next(answers))
    qtbot.mouseClick(browser.delete_button, Qt.MouseButton.LeftButton)  # No: nothing happens
    assert Path(run.run_dir).is_dir() and run_id in browser._items
    qtbot.mouseClick(browser.delete_button, Qt.MouseButton.LeftButton)  # Yes
    assert not Path(run.run_dir).exists()
    assert run_id not in browser._items
    with pytest.raises(queries.NotFound):
        queries.get_experiment(window.store(), run.experiment_id)
