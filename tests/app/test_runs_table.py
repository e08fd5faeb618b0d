"""The runs table of the Experiments view (issue 31, item 4), on a bulk-built workspace of
120 runs (tests/many_runs.py): search with errors in place, sorting, chosen columns (final
and best metrics with their stage, plan settings), tags and note saved, Open and Compare,
and a refresh that picks up a run changed elsewhere."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app import create_main_window
from app.model.runs_table import DEFAULT_COLUMNS, Column
from app.qt.browser import qt_runs_model
from app.qt.browser.qt_runs_model import run_menu
from app.qt.browser.qt_runs_table import QtRunsTable
from app.qt.qt_run_actions import EXPERIMENTS_TAB
from engine.store import Store, queries
from engine.store.tags import set_run_note, tag_run
from tests import many_runs
from tests.app.conftest import mark_saved

RUNS = 120


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs-table") / "ws"
    many_runs.build(root, runs=RUNS)
    return root


@pytest.fixture
def table(qtbot, ws):
    store = Store.open(ws / "stagelab.db")
    widget = QtRunsTable(lambda: store)
    qtbot.addWidget(widget)
    widget.resize(1400, 800)
    widget.show()
    qtbot.waitUntil(lambda: widget.model.rowCount() == RUNS, timeout=10_000)
    return widget


def column_texts(table, header: str) -> list[str]:
    model = table.model
    c = next(i for i, col in enumerate(model.columns) if col.header == header)
    return [model.index(r, c).data() for r in range(model.rowCount())]


def search(qtbot, table, text):
    table.search_box.setText(text)
    qtbot.keyClick(table.search_box, Qt.Key.Key_Return)


def test_search_filters_and_a_bad_term_is_shown_in_place(qtbot, table):
    assert table.count_label.text() == f"{RUNS} runs"
    search(qtbot, table, "tag:baseline eval/accuracy>=0.5")
    expected = [i for i in range(RUNS) if i % 10 == 0 and i % 100 >= 50]
    assert [r.id for r in table.model.shown] == [f"r{i:011d}" for i in reversed(expected)]
    assert table.count_label.text() == f"{len(expected)} of {RUNS} runs"
    assert not table.search_error.isVisibleTo(table)
    search(qtbot, table, "tag:baseline colour:red")
    assert table.search_error.isVisibleTo(table)
    assert table.search_error.text().startswith("'colour:red' names no field")
    assert table.model.rowCount() == len(expected)  # the last good search stays
    table.search_box.clear()  # typing searches after a short pause
    qtbot.waitUntil(lambda: table.model.rowCount() == RUNS, timeout=5000)
    assert not table.search_error.isVisibleTo(table)


def test_metric_cells_name_their_stage_and_headers_sort(qtbot, table):
    finals = column_texts(table, "eval/accuracy\nfinal")
    assert finals[0] == "0.19 (cls)"  # run 119, newest first
    assert column_texts(table, "eval/accuracy\nbest")[0] == "0.24 (cls)"
    header = table.view.horizontalHeader()
    c = table.model.columns.index(Column("final", "eval/accuracy"))
    header.sectionClicked.emit(c)
    values = [r.final["eval/accuracy"][0] for r in table.model.shown]
    assert values == sorted(values)
    header.sectionClicked.emit(c)
    assert [r.final["eval/accuracy"][0] for r in table.model.shown] == sorted(values, reverse=True)
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder


def test_columns_are_chosen_from_the_menu_and_plan_settings_shown(qtbot, table):
    actions = menu_actions(table)
    assert actions["column:note"].isChecked()
    actions["column:note"].toggle()
    assert Column("note") not in table.model.columns
    actions["column:setting:lr"].toggle()  # offered from the newest plan
    assert column_texts(table, "lr")[0] == "0.002, 0.0002"  # both stages' lr
    path = table.columns_menu.findChild(type(table.search_box), "runsSettingPath")
    path.setText("cls.batch_size")
    qtbot.keyClick(path, Qt.Key.Key_Return)
    assert column_texts(table, "cls.batch_size")[:2] == ["32", "32"]  # experiment 11: odd
    actions["column:best:eval/accuracy"].toggle()
    assert Column("best", "eval/accuracy") not in table.model.columns
    assert "column:final:train/loss" in menu_actions(table)
    assert "column:best:train/loss" not in menu_actions(table)  # best: evaluation metrics


def menu_actions(table) -> dict:
    table._fill_columns_menu()
    out, menus = {}, [table.columns_menu]
    while menus:
        for action in menus.pop().actions():
            if action.menu():
                menus.append(action.menu())
            elif action.objectName():
                out[action.objectName()] = action
    return out


def test_tags_and_note_are_saved_and_open_compare_emit(qtbot, table, ws):
    store = Store.open(ws / "stagelab.db")
    table.select(["r00000000005"])
    assert table.tags_edit.isEnabled() and table.note_edit.toPlainText() == "note 5"
    table.tags_edit.setText("best, keep ,")
    table.tags_edit.editingFinished.emit()
    assert queries.get_run(store, "r00000000005").tags == ("best", "keep")
    assert column_texts(table, "Tags")[RUNS - 1 - 5] == "best, keep"
    table.tags_edit.setText("best")  # removing one
    table.tags_edit.editingFinished.emit()
    assert queries.get_run(store, "r00000000005").tags == ("best",)
    table.tags_edit.setText("two words")
    table.tags_edit.editingFinished.emit()
    assert "cannot be a tag" in table.search_error.text()
    table.note_edit.setPlainText("worth a second seed")
    qtbot.waitUntil(lambda: queries.get_run(store, "r00000000005").note == "worth a second seed")
    with qtbot.waitSignal(table.openRun) as opened:
        qtbot.mouseClick(table.open_button, Qt.MouseButton.LeftButton)
    assert opened.args == ["r00000000005"]
    assert not table.compare_button.isEnabled()
    table.select(["r00000000005", "r00000000006"])
    with qtbot.waitSignal(table.compareRuns) as compared:
        qtbot.mouseClick(table.compare_button, Qt.MouseButton.LeftButton)
    assert sorted(compared.args[0]) == ["r00000000005", "r00000000006"]


def test_context_menu_tags_several_runs_at_once(qtbot, table, ws):
    store = Store.open(ws / "stagelab.db")
    chosen = ["r00000000013", "r00000000014", "r00000000016"]  # no tag yet
    table.select(chosen)
    menu = run_menu(table)
    field = menu.findChild(type(table.search_box), "addTagField")
    field.setText("triple")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert [queries.get_run(store, r).tags for r in chosen] == [("triple",)] * 3
    assert {r.id for r in table.model.all_rows if "triple" in r.tags} == set(chosen)
    table.select(chosen[:2])
    menu = run_menu(table)
    assert [a.text() for a in menu.actions()[:2]] == ["Open", "Compare"]
    assert not menu.actions()[0].isEnabled() and menu.actions()[1].isEnabled()
    remove = menu.findChild(type(menu), "removeTagMenu")
    next(a for a in remove.actions() if a.objectName() == "removeTag:triple").trigger()
    assert [queries.get_run(store, r).tags for r in chosen] == [(), (), ("triple",)]
    table.select(chosen[:1])
    menu = run_menu(table)
    field = menu.findChild(type(table.search_box), "addTagField")
    field.setText("no good")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert "cannot be a tag" in table.search_error.text()
    assert not menu.findChild(type(menu), "removeTagMenu").isEnabled()


def test_refresh_reads_again_a_run_changed_elsewhere(qtbot, table, ws):
    store = Store.open(ws / "stagelab.db")
    tag_run(store, "r00000000007", ["from-cli"])
    set_run_note(store, "r00000000007", "set by stagelab note")
    table.refresh()
    row = next(r for r in table.model.all_rows if r.id == "r00000000007")
    assert (row.tags, row.note) == (("from-cli",), "set by stagelab note")
    queries.set_run_status(store, "r00000000007", "stopped")
    table.refresh()
    assert next(r for r in table.model.all_rows if r.id == "r00000000007").status == "stopped"


def test_the_experiments_view_has_the_runs_tab(qtbot, ws):
    win = create_main_window(ws)
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.resize(1024, 640)
    win.show()
    win.runs.show_tab(EXPERIMENTS_TAB)
    browser = win.runs.browser
    browser.views.setCurrentWidget(browser.runs_table)
    qtbot.waitUntil(lambda: browser.runs_table.model.rowCount() == RUNS, timeout=10_000)
    assert browser.views.tabText(1) == "Runs"
    assert not browser.refresh_timer.isActive()  # the tree polls only while it shows
    # the chosen columns are kept in the workspace's window settings
    browser.runs_table.toggle_column(Column("setting", "batch_size"), True)
    win.settings.sync()
    again = create_main_window(ws)
    qtbot.addWidget(again, before_close_func=mark_saved)
    again.show()
    again.runs.show_tab(EXPERIMENTS_TAB)
    table = again.runs.browser.runs_table
    again.runs.browser.views.setCurrentWidget(table)
    qtbot.waitUntil(lambda: table.model.rowCount() == RUNS, timeout=10_000)
    assert table.model.columns[-1] == Column("setting", "batch_size")
    assert table.model.columns[:-1] == list(DEFAULT_COLUMNS)


def test_a_big_workspace_opens_on_the_runs_view(qtbot, ws, monkeypatch):
    monkeypatch.setattr(qt_runs_model, "MANY_RUNS", RUNS - 1)  # 10,000 in life
    win = create_main_window(ws)
    qtbot.addWidget(win, before_close_func=mark_saved)
    win.show()
    win.runs.show_tab(EXPERIMENTS_TAB)
    browser = win.runs.browser
    assert browser.views.currentWidget() is browser.runs_table
    qtbot.waitUntil(lambda: browser.runs_table.model.rowCount() == RUNS, timeout=10_000)
    assert browser.model.rowCount() == 0 and not browser.refresh_timer.isActive()
    browser.refresh()  # a run started elsewhere asks; the tree waits until it shows
    assert browser.model.rowCount() == 0
    browser.views.setCurrentIndex(0)
    assert browser.model.rowCount() == RUNS // 10 and browser.refresh_timer.isActive()
