"""The runs table of the Experiments view (issue 31, item 4): every run in one sortable
table with the columns a person chooses (status, target, duration, final and best metrics
with their stage, any plan setting), its tags and note editable beside it, and a search box
in the language of `stagelab ls --where` (engine/store/search.py) whose errors show in
place. 10,000 runs open and filter in a few hundred ms (bench/runs_table.py): the table
model holds plain rows and sorts them itself; a refresh reads again only the runs that
changed."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model.runs_table import Column, wanted_reads
from app.qt.browser.qt_runs_model import (  # noqa: F401 - column_of, many_runs: the browser's
    RunsModel,
    column_of,
    fill_columns_menu,
    many_runs,
    run_menu,
)
from engine.store.status import NOT_ENDED

REFRESH_MS = 3000
COLUMNS_KEY = "runsTable/columns"
SEARCH_DELAY_MS = 250


class QtRunsTable(QWidget):
    """Signals carry run ids; the window opens and compares them."""

    openRun = Signal(str)
    compareRuns = Signal(list)

    def __init__(self, store_factory, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsTablePanel")
        self.store = store_factory
        self.model = RunsModel(self._stage_names, self)
        self.view = QTableView()
        self.view.setObjectName("runsTable")
        self.view.setAccessibleName("Runs")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.view.horizontalHeader()
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(False)
        header.setStretchLastSection(True)
        header.setResizeContentsPrecision(60)  # widths from the rows in view, not 1000
        header.sectionClicked.connect(self._header_clicked)
        self.view.doubleClicked.connect(lambda _: self._open())
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(
            lambda point: run_menu(self).exec(self.view.viewport().mapToGlobal(point))
        )
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())

        self.search_box = QLineEdit()
        self.search_box.setObjectName("runsSearch")
        self.search_box.setAccessibleName("Search runs")
        self.search_box.setPlaceholderText(
            "tag:best status:finished eval/accuracy>0.9 lr<1e-3 words"
        )
        self.search_box.setToolTip(
            "tag:NAME status:finished target:local experiment:NAME; a metric (eval/accuracy>0.9, "
            "its final value) or a plan setting (lr<1e-3, stages.0.batch_size=32); other words "
            "match names, notes, tags and ids; -term negates. Same as stagelab ls --where."
        )
        self.search_box.setClearButtonEnabled(True)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_search)
        self.search_box.textChanged.connect(lambda _: self._search_timer.start())
        self.search_box.returnPressed.connect(self.apply_search)
        self.search_error = QLabel()
        self.search_error.setObjectName("runsSearchError")
        self.search_error.setWordWrap(True)
        self.search_error.setStyleSheet("color: #C0392B;")
        self.search_error.hide()
        self.count_label = QLabel()
        self.count_label.setObjectName("runsCount")
        self.columns_button = QToolButton()
        self.columns_button.setObjectName("runsColumnsButton")
        self.columns_button.setText("Columns")
        self.columns_button.setToolTip("Choose the columns: metrics, plan settings, tags, note")
        self.columns_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.columns_menu = QMenu(self.columns_button)
        self.columns_menu.aboutToShow.connect(self._fill_columns_menu)
        self.columns_button.setMenu(self.columns_menu)
        self.open_button = QPushButton("Open")
        self.open_button.setObjectName("runsOpenButton")
        self.open_button.setToolTip("Show the run in the monitor")
        self.open_button.clicked.connect(self._open)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setObjectName("runsCompareButton")
        self.compare_button.setToolTip("Overlay the curves and diff the plans of 2+ runs")
        self.compare_button.clicked.connect(self._compare)
        bar = QHBoxLayout()
        bar.addWidget(self.search_box, 1)
        bar.addWidget(self.count_label)
        bar.addWidget(self.columns_button)
        bar.addWidget(self.open_button)
        bar.addWidget(self.compare_button)

        self.details_title = QLabel()
        self.details_title.setWordWrap(True)
        self.tags_edit = QLineEdit()
        self.tags_edit.setObjectName("runTags")
        self.tags_edit.setPlaceholderText("comma-separated, e.g. baseline, best")
        self.tags_edit.setToolTip(
            "Add or remove tags; saved when you leave the field or press Enter"
        )
        self.tags_edit.editingFinished.connect(self._save_tags)
        self.tag_completer = QCompleter([], self.tags_edit)
        self.tags_edit.setCompleter(self.tag_completer)
        self.note_edit = QPlainTextEdit()
        self.note_edit.setObjectName("runNote")
        self.note_edit.setPlaceholderText("What this run tried and what it showed")
        self._note_timer = QTimer(self, singleShot=True, interval=600)
        self._note_timer.timeout.connect(self._save_note)
        self.note_edit.textChanged.connect(
            lambda: self._note_timer.start() if self._editing else None
        )
        details = QWidget()
        form = QFormLayout(details)
        form.addRow(self.details_title)
        form.addRow("Tags", self.tags_edit)
        form.addRow("Note", self.note_edit)
        split = QSplitter()
        split.setChildrenCollapsible(False)
        split.addWidget(self.view)
        split.addWidget(details)
        split.setStretchFactor(0, 3)
        split.setSizes([1100, 250])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.search_error)
        layout.addWidget(split, 1)
        self._editing: str | None = None
        self._states: dict | None = None
        self.refresh_timer = QTimer(self, interval=REFRESH_MS, timeout=self.refresh)
        self._selection_changed()

    # -- contents ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Read every run again (the columns changed, or the first show)."""
        from engine.store.run_rows import table_runs

        finals, bests, plans = wanted_reads(self.model.columns)
        rows = table_runs(self.store(), finals, bests, plans=plans)
        self._states = {r.id: r.state for r in rows}
        selected = self.selected_runs()
        self.model.put(rows, self.model.matching)
        self._after_change(selected)

    def refresh(self) -> None:
        """Read again the runs that are new, gone, changed or still live."""
        if self._states is None:
            self.reload()
            return
        from engine.store.run_rows import run_states, table_runs

        store = self.store()
        states = run_states(store)
        if states.keys() != self._states.keys():
            self.reload()
            return
        changed = [
            run_id
            for run_id, state in states.items()
            if state != self._states[run_id] or state[0] in NOT_ENDED
        ]
        self._states = states
        if not changed:
            return
        finals, bests, plans = wanted_reads(self.model.columns)
        fresh = {r.id: r for r in table_runs(store, finals, bests, plans=plans, run_ids=changed)}
        selected = self.selected_runs()
        self.model.put([fresh.get(r.id, r) for r in self.model.all_rows], self.model.matching)
        self._after_change(selected)

    def _stage_names(self, run_ids: list[str]) -> dict:
        from engine.store.run_rows import stage_names

        return stage_names(self.store(), run_ids)

    def _after_change(self, selected: list[str]) -> None:
        total, shown = len(self.model.all_rows), len(self.model.shown)
        self.count_label.setText(f"{shown} of {total} runs" if shown != total else f"{total} runs")
        self.select(selected)
        self._selection_changed()

    def apply_search(self) -> None:
        """Filter by the search box; a query that cannot be read says why under it and
        leaves the table as it was."""
        from engine.store.search import SearchError, search_runs

        self._search_timer.stop()
        text = self.search_box.text().strip()
        try:
            matching = set(search_runs(self.store(), text)) if text else None
        except SearchError as exc:
            self.search_error.setText(str(exc))
            self.search_error.show()
            self.search_box.setStyleSheet("QLineEdit { border: 1px solid #C0392B; }")
            return
        self.search_error.hide()
        self.search_box.setStyleSheet("")
        selected = self.selected_runs()
        self.model.put(self.model.all_rows, matching)
        self._after_change(selected)

    def set_columns(self, columns: list[Column]) -> None:
        self.model.order = (-1, False)
        self.view.horizontalHeader().setSortIndicatorShown(False)
        self.model.columns = list(columns)
        settings = self._settings()
        if settings is not None:
            settings.setValue(COLUMNS_KEY, [c.ident for c in columns])
        self.reload()
        self.fit_columns()

    def _settings(self):
        """The window's settings (the workspace's gui.ini), where the chosen columns live;
        None for a table outside the main window."""
        return getattr(self.window(), "settings", None)

    def _restore_columns(self) -> None:
        settings = self._settings()
        saved = settings.value(COLUMNS_KEY) if settings is not None else None
        if isinstance(saved, str):  # one item comes back as a plain string
            saved = [saved]
        columns = [c for c in (Column.parse(str(i)) for i in saved or ()) if c is not None]
        if columns:
            self.model.columns = columns

    def fit_columns(self) -> None:
        header = self.view.horizontalHeader()
        for i in range(len(self.model.columns)):
            self.view.resizeColumnToContents(i)
            header.resizeSection(i, min(header.sectionSize(i), 260))

    def _header_clicked(self, section: int) -> None:
        column, descending = self.model.order
        descending = not descending if column == section else False
        header = self.view.horizontalHeader()
        header.setSortIndicatorShown(True)
        header.setSortIndicator(
            section, Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        )
        selected = self.selected_runs()
        self.model.order_by(section, descending)
        self.select(selected)

    def showEvent(self, event) -> None:  # noqa: N802
        first = self._states is None
        if first:
            self._restore_columns()
        self.refresh()
        if first:
            self.fit_columns()
        self.refresh_timer.start()
        super().showEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802
        self.refresh_timer.stop()
        self._save_note()
        super().hideEvent(event)

    # -- columns ----------------------------------------------------------------------------

    def _fill_columns_menu(self) -> None:
        fill_columns_menu(self.columns_menu, self)

    def toggle_column(self, column: Column, on: bool) -> None:
        columns = [c for c in self.model.columns if c != column]
        if on:
            columns.append(column)
        if columns:  # the last column stays
            self.set_columns(columns)

    # -- selection, tags and note -----------------------------------------------------------

    def selected_runs(self) -> list[str]:
        rows = sorted(i.row() for i in self.view.selectionModel().selectedRows())
        return [self.model.shown[r].id for r in rows if r < len(self.model.shown)]

    def select(self, run_ids: list[str]) -> None:
        wanted = set(run_ids)
        selection = self.view.selectionModel()
        selection.clearSelection()
        flags = selection.SelectionFlag.Select | selection.SelectionFlag.Rows
        for row, run in enumerate(self.model.shown):
            if run.id in wanted:
                selection.select(self.model.index(row, 0), flags)

    def _run(self, run_id: str | None):
        return next((r for r in self.model.all_rows if r.id == run_id), None)

    def _selection_changed(self) -> None:
        runs = self.selected_runs()
        self.open_button.setEnabled(len(runs) == 1)
        self.compare_button.setEnabled(len(runs) >= 2)
        run_id = runs[0] if len(runs) == 1 else None
        if run_id == self._editing:
            return
        self._save_note()
        self._editing = None
        run = self._run(run_id)
        self.tags_edit.setEnabled(run is not None)
        self.note_edit.setEnabled(run is not None)
        self.tags_edit.setText(", ".join(run.tags) if run else "")
        self.note_edit.setPlainText(run.note if run else "")
        self.details_title.setText(
            f"<b>{run.experiment} #{run.number}</b> · {run.id}"
            if run
            else "Select one run to see and edit its tags and note."
        )
        if run is not None:
            from engine.store.tags import all_tags

            self.tag_completer.model().setStringList(all_tags(self.store()))
        self._editing = run_id

    def _replace(self, run_id: str, **changes) -> None:
        """Change one row in place (no reset: the selection and scroll position stay)."""
        from dataclasses import replace

        model = self.model
        for rows in (model.all_rows, model.shown):
            for i, r in enumerate(rows):
                if r.id == run_id:
                    rows[i] = replace(r, **changes)
                    if rows is model.shown:
                        last = model.index(i, len(model.columns) - 1)
                        model.dataChanged.emit(model.index(i, 0), last)
                    break

    def _save_tags(self) -> None:
        from engine.store.tags import TagError, set_run_tags

        run = self._run(self._editing)
        if run is None:
            return
        names = [t for t in (p.strip() for p in self.tags_edit.text().split(",")) if t]
        if tuple(sorted(set(names))) == run.tags:
            return
        try:
            tags = set_run_tags(self.store(), run.id, names)
        except TagError as exc:
            self.search_error.setText(str(exc))
            self.search_error.show()
            return
        self.search_error.hide()
        self._replace(run.id, tags=tags)
        self.tags_edit.setText(", ".join(tags))

    def _save_note(self) -> None:
        from engine.store.tags import set_run_note

        self._note_timer.stop()
        run = self._run(self._editing)
        if run is None or self.note_edit.toPlainText() == run.note:
            return
        set_run_note(self.store(), run.id, self.note_edit.toPlainText())
        self._replace(run.id, note=self.note_edit.toPlainText())

    def _open(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            self.openRun.emit(runs[0])

    def _compare(self) -> None:
        runs = self.selected_runs()
        if len(runs) >= 2:
            self.compareRuns.emit(runs)
