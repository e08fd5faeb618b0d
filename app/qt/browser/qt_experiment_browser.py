"""The experiment browser: experiments with their runs (newest first) in a sortable,
searchable table, status filter, editable tags and notes, and the actions on the selection:
open, resume, clone, compare, delete."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.model.browser_rows import COLUMNS, STATUS_COLOURS, STATUSES, Row, table
from app.qt.browser.qt_runs_table import QtRunsTable, column_of, many_runs
from engine.store.status import RESUMABLE

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
EXPERIMENT_ROLE = Qt.ItemDataRole.UserRole + 2
RUN_ROLE = Qt.ItemDataRole.UserRole + 3
STATUS_ROLE = Qt.ItemDataRole.UserRole + 4
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 5
REFRESH_MS = 3000


class RunFilter(QSortFilterProxyModel):
    """Search text and status: a row shows if it or any of its runs matches."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.text, self.status = "", ""
        self.setSortRole(SORT_ROLE)
        self.setRecursiveFilteringEnabled(True)

    def set_filter(self, text: str, status: str) -> None:
        self.text, self.status = text.lower().strip(), status
        self.invalidate()

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802
        index = self.sourceModel().index(row, 0, parent)
        if self.status and index.data(STATUS_ROLE) != self.status:
            return False
        if self.text:
            haystack = index.data(SEARCH_ROLE) or ""
            if parent.isValid():  # a run also matches through its experiment
                haystack += " " + (parent.data(SEARCH_ROLE) or "")
            return all(word in haystack for word in self.text.split())
        return True


class QtExperimentBrowser(QWidget):
    """Signals carry ids; the window does the work (open, resume, clone, compare, delete)."""

    openRun = Signal(str)
    resumeRun = Signal(str)
    cloneExperiment = Signal(str)
    compareRuns = Signal(list)
    deleteExperiments = Signal(list)
    fetchOutputs = Signal(str)  # a run that trained on a target

    def __init__(self, store_factory, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("experimentBrowser")
        self.store = store_factory
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = RunFilter(self)
        self.proxy.setSourceModel(self.model)
        self.view = QTreeView()
        self.view.setObjectName("experimentTable")
        self.view.setAccessibleName("Experiments and runs")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(2, Qt.SortOrder.DescendingOrder)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.doubleClicked.connect(lambda _: self._open())
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())

        self.search = QLineEdit()
        self.search.setObjectName("experimentSearch")
        self.search.setPlaceholderText("Search name, id, tag or notes")
        self.search.setClearButtonEnabled(True)
        self.status_filter = QComboBox()
        self.status_filter.setObjectName("statusFilter")
        self.status_filter.addItem("Any status", "")
        for status in STATUSES:
            self.status_filter.addItem(status.capitalize(), status)
        self.search.textChanged.connect(self._filter)
        self.status_filter.currentIndexChanged.connect(self._filter)
        self.open_button = self._button(
            "Open", "openRunButton", self._open, "Show the run in the monitor"
        )
        self.resume_button = self._button(
            "Resume", "browserResumeButton", self._resume, "Continue an interrupted or stopped run"
        )
        self.clone_button = self._button(
            "Clone",
            "cloneButton",
            self._clone,
            "A new experiment with this plan, opened in the editor",
        )
        self.compare_button = self._button(
            "Compare",
            "compareButton",
            self._compare,
            "Overlay the curves and diff the plans of 2+ runs",
        )
        self.delete_button = self._button(
            "Delete…",
            "deleteButton",
            self._delete,
            "Delete the experiment, its runs and their files",
        )
        bar = QHBoxLayout()
        bar.addWidget(self.search, 2)
        bar.addWidget(self.status_filter)
        for button in (
            self.open_button,
            self.resume_button,
            self.clone_button,
            self.compare_button,
            self.delete_button,
        ):
            bar.addWidget(button)

        self.details_title = QLabel("Select an experiment to see and edit its tags and notes.")
        self.details_title.setWordWrap(True)
        self.tags = QLineEdit()
        self.tags.setObjectName("experimentTags")
        self.tags.setPlaceholderText("comma-separated, e.g. baseline, lr-sweep")
        self.tags.editingFinished.connect(self._save_details)
        self.notes = QPlainTextEdit()
        self.notes.setObjectName("experimentNotes")
        self.notes.setPlaceholderText("What you tried and what you learned")
        self._notes_timer = QTimer(self, singleShot=True, interval=600, timeout=self._save_details)
        self.notes.textChanged.connect(lambda: self._notes_timer.start() if self._editing else None)
        details = QWidget()
        form = QFormLayout(details)
        form.addRow(self.details_title)
        form.addRow("Tags", self.tags)
        form.addRow("Notes", self.notes)
        self._editing: str | None = None
        self._set_details(None)

        split = QSplitter()
        split.setChildrenCollapsible(False)  # a small window never hides a part
        split.addWidget(self.view)
        split.addWidget(details)
        split.setStretchFactor(0, 3)
        split.setSizes([1000, 360])
        experiments = column_of(bar, split)
        # Every run in one table, searchable (issue 31): app/qt/browser/qt_runs_table.py.
        self.runs_table = QtRunsTable(store_factory)
        self.runs_table.openRun.connect(self.openRun)
        self.runs_table.compareRuns.connect(self.compareRuns)
        self.views = QTabWidget(objectName="browserViews", documentMode=True)
        self.views.addTab(experiments, "Experiments")
        self.views.addTab(self.runs_table, "Runs")
        self.views.currentChanged.connect(lambda _: self._tree_shown())
        self._many: bool | None = None  # more runs than the tree reads quickly
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.views, 1)
        self._items: dict[str, list[QStandardItem]] = {}
        self.experiments: dict[str, object] = {}
        self.refresh_timer = QTimer(self, interval=REFRESH_MS, timeout=self.refresh)
        self._selection_changed()

    def _button(self, text: str, name: str, slot, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setAccessibleName(text.rstrip("…"))
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # -- contents ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the store again (not while the Runs view shows); rows are updated in place."""
        if self.views.currentIndex() != 0:
            return
        from engine.store import queries
        from engine.store.browse import browse_runs

        store = self.store()
        experiments = queries.list_experiments(store)
        self.experiments = {e.id: e for e in experiments}
        rows = table(experiments, browse_runs(store))
        wanted = {
            row.run_id or row.experiment_id for exp_row, runs in rows for row in [exp_row, *runs]
        }
        for key in [k for k in self._items if k not in wanted]:
            item = self._items.pop(key)[0]
            if shiboken6.isValid(item):  # a run's row went with its experiment's
                parent = item.parent() or self.model.invisibleRootItem()
                parent.removeRow(item.row())
        known = len(self._items)
        for exp_row, runs in rows:
            parent = self._put(exp_row, self.model.invisibleRootItem())
            for run_row in runs:
                self._put(run_row, parent)
        if len(self._items) > known:  # new rows: show them whole
            self.view.expandAll()
            for column in range(len(COLUMNS)):
                self.view.resizeColumnToContents(column)
        self._selection_changed()

    def _put(self, row: Row, parent: QStandardItem) -> QStandardItem:
        key = row.run_id or row.experiment_id
        items = self._items.get(key)
        if items is None:
            items = [QStandardItem() for _ in COLUMNS]
            parent.appendRow(items)
            self._items[key] = items
            if row.run_id is None:
                self.view.expand(self.proxy.mapFromSource(items[0].index()))
        for item, text, sort_key in zip(items, row.texts, row.sort_keys, strict=True):
            if item.text() != text:
                item.setText(text)
            item.setData(sort_key, SORT_ROLE)
        items[1].setForeground(QColor(STATUS_COLOURS.get(row.status, "#777777")))
        first = items[0]
        first.setData(row.experiment_id, EXPERIMENT_ROLE)
        first.setData(row.run_id, RUN_ROLE)
        first.setData(row.status, STATUS_ROLE)
        first.setData(row.search_text, SEARCH_ROLE)
        return first

    def _filter(self) -> None:
        self.proxy.set_filter(self.search.text(), self.status_filter.currentData())
        self.view.expandAll()

    def showEvent(self, event) -> None:  # noqa: N802
        if self._many is None:  # a big workspace opens on the Runs view (the tree is slow)
            self._many = many_runs(self.store())
            if self._many:
                self.views.setCurrentWidget(self.runs_table)
        super().showEvent(event)
        self._tree_shown()

    def _tree_shown(self) -> None:
        """The tree reads and polls the store only while it is the view shown."""
        if self.views.currentIndex() == 0 and self.isVisible():
            self.refresh()
            self.refresh_timer.start()
        else:
            self.refresh_timer.stop()

    def hideEvent(self, event) -> None:  # noqa: N802
        self.refresh_timer.stop()
        super().hideEvent(event)

    # -- selection --------------------------------------------------------------------------

    def selected(self) -> list[tuple[str, str | None]]:
        """(experiment id, run id or None) of the selected rows, in view order."""
        rows = self.view.selectionModel().selectedRows(0)
        rows.sort(
            key=lambda i: (i.parent().row(), i.row()) if i.parent().isValid() else (i.row(), -1)
        )
        return [(i.data(EXPERIMENT_ROLE), i.data(RUN_ROLE)) for i in rows]

    def select(self, key: str) -> None:
        """Select the row of an experiment or run id."""
        items = self._items.get(key)
        if items:
            index = self.proxy.mapFromSource(items[0].index())
            self.view.setCurrentIndex(index)
            self.view.scrollTo(index)

    def selected_runs(self) -> list[str]:
        """Selected runs; an experiment stands for its newest run."""
        out = []
        for exp_id, run_id in self.selected():
            if run_id is None:
                exp = self.experiments.get(exp_id)
                runs = sorted(exp.runs, key=lambda r: r.number) if exp else []
                run_id = runs[-1].id if runs else None
            if run_id and run_id not in out:
                out.append(run_id)
        return out

    def _run_status(self, run_id: str) -> str:
        items = self._items.get(run_id)
        return items[0].data(STATUS_ROLE) if items else ""

    def _selection_changed(self) -> None:
        selection = self.selected()
        runs = self.selected_runs()
        experiments = {exp for exp, _ in selection}
        self.open_button.setEnabled(len(runs) == 1)
        self.resume_button.setEnabled(len(runs) == 1 and self._run_status(runs[0]) in RESUMABLE)
        self.clone_button.setEnabled(len(experiments) == 1)
        self.compare_button.setEnabled(len(runs) >= 2)
        self.delete_button.setEnabled(bool(experiments))
        self._set_details(next(iter(experiments)) if len(experiments) == 1 else None)

    def _set_details(self, exp_id: str | None) -> None:
        if exp_id == self._editing:
            return
        self._save_details()
        self._editing = None
        exp = self.experiments.get(exp_id) if exp_id else None
        self.tags.setEnabled(exp is not None)
        self.notes.setEnabled(exp is not None)
        self.tags.setText(", ".join(exp.tags) if exp else "")
        self.notes.setPlainText(exp.notes if exp else "")
        if exp is not None:
            parent = self.experiments.get(exp.parent_id)
            lineage = (
                f"<br>Cloned from <i>{parent.name}</i> ({exp.parent_id})" if exp.parent_id else ""
            )
            self.details_title.setText(f"<b>{exp.name}</b> · {exp.id}{lineage}")
        else:
            self.details_title.setText("Select one experiment to see and edit its tags and notes.")
        self._editing = exp_id

    def _save_details(self) -> None:
        """Tags and notes are saved as they are typed (never lost by switching rows)."""
        self._notes_timer.stop()
        exp = self.experiments.get(self._editing) if self._editing else None
        if exp is None:
            return
        tags = tuple(sorted({t.strip() for t in self.tags.text().split(",") if t.strip()}))
        notes = self.notes.toPlainText()
        if tags == tuple(exp.tags) and notes == exp.notes:
            return
        from engine.store import queries

        queries.update_experiment(self.store(), exp.id, notes=notes, tags=list(tags))
        self.experiments[exp.id] = queries.get_experiment(self.store(), exp.id)
        self.refresh()

    # -- actions ----------------------------------------------------------------------------

    def _open(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            self.openRun.emit(runs[0])

    def run_menu(self) -> QMenu:
        """The selected run's context menu: Open, Resume, and Fetch outputs for a run that
        trained on a target."""
        from app.qt.remote.qt_fetch import can_fetch
        from engine.store import queries

        runs = self.selected_runs()
        menu = QMenu(self)
        menu.addAction("Open", self._open).setEnabled(len(runs) == 1)
        resumable = len(runs) == 1 and self._run_status(runs[0]) in RESUMABLE
        menu.addAction("Resume", self._resume).setEnabled(resumable)
        fetch = menu.addAction("Fetch outputs from the target")
        fetch.setObjectName("fetchOutputsAction")
        remote = len(runs) == 1 and can_fetch(queries.get_run(self.store(), runs[0]))
        fetch.setEnabled(remote)
        fetch.triggered.connect(lambda: self.fetchOutputs.emit(runs[0]))
        return menu

    def _context_menu(self, point) -> None:
        if self.selected_runs():
            self.run_menu().exec(self.view.viewport().mapToGlobal(point))

    def _resume(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            self.resumeRun.emit(runs[0])

    def _clone(self) -> None:
        experiments = {exp for exp, _ in self.selected()}
        if len(experiments) == 1:
            self.cloneExperiment.emit(experiments.pop())

    def _compare(self) -> None:
        runs = self.selected_runs()
        if len(runs) >= 2:
            self.compareRuns.emit(runs)

    def _delete(self) -> None:
        experiments = list(dict.fromkeys(exp for exp, _ in self.selected()))
        if experiments:
            self.deleteExperiments.emit(experiments)
