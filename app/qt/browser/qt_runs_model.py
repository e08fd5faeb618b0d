"""The runs table's Qt model and its column chooser (app/qt/browser/qt_runs_table.py)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import QLayout, QLineEdit, QMenu, QVBoxLayout, QWidget, QWidgetAction

from app.model.browser_rows import STATUS_COLOURS
from app.model.runs_table import DEFAULT_COLUMNS, FIXED, Column, cell, chooser_settings, sort_rows


class RunsModel(QAbstractTableModel):
    """Rows are `TableRun`s; `shown` the ones the search leaves, in the chosen order."""

    def __init__(self, names_for=None, parent=None):
        super().__init__(parent)
        # (run id, stage index) → stage name, read for the rows in view only: reading every
        # stage of 10,000 runs would cost the table's open a third of its time.
        self.names_for = names_for
        self.stage_names: dict[tuple[str, int], str] = {}
        self.columns: list[Column] = list(DEFAULT_COLUMNS)
        self.all_rows: list = []
        self.shown: list = []
        self.matching: set[str] | None = None  # None: no search
        self.order: tuple[int, bool] = (-1, False)  # column, descending; -1: newest first

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.shown)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].header
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        run, column = self.shown[index.row()], self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if column.kind in ("final", "best") and self.names_for is not None:
                found = (run.final if column.kind == "final" else run.best).get(column.key)
                if found is not None and (run.id, found[1]) not in self.stage_names:
                    near = self.shown[index.row() : index.row() + 200]
                    self.stage_names.update(self.names_for([r.id for r in near]))
                    self.stage_names.setdefault((run.id, found[1]), str(found[1]))
            return cell(run, column, self.stage_names)[0]
        if role == Qt.ItemDataRole.ToolTipRole and column.kind in ("note", "tags", "run"):
            return run.note if column.kind == "note" else f"{run.id} · {cell(run, column)[0]}"
        if role == Qt.ItemDataRole.ForegroundRole and column.kind == "status":
            return QColor(STATUS_COLOURS.get(run.status, "#777777"))
        if role == Qt.ItemDataRole.TextAlignmentRole and column.kind in ("final", "best"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def put(self, rows: list, matching: set[str] | None = None) -> None:
        """New rows and/or search result; keeps the chosen order."""
        self.beginResetModel()
        self.all_rows = rows
        self.matching = matching
        shown = list(rows) if matching is None else [r for r in rows if r.id in matching]
        column, descending = self.order
        if 0 <= column < len(self.columns):
            shown = sort_rows(shown, self.columns[column], descending)
        self.shown = shown
        self.endResetModel()

    def order_by(self, column: int, descending: bool) -> None:
        self.order = (column, descending)
        self.put(self.all_rows, self.matching)


def fill_columns_menu(menu: QMenu, table) -> None:
    """The Columns menu of a `QtRunsTable`: the fixed columns, final and best metrics (best
    of evaluation metrics only), plan settings of the newest plan and a field for any path."""
    from engine.store.run_rows import metric_keys, newest_plan

    chosen = set(table.model.columns)
    menu.clear()
    for kind, header in FIXED.items():
        _column_action(menu, table, Column(kind), header, chosen)
    store = table.store()
    keys = [k for k in metric_keys(store) if not k.startswith("perf/")]
    for kind, title in (("final", "Final metric"), ("best", "Best metric")):
        sub = menu.addMenu(title)
        sub.setObjectName(f"{kind}MetricMenu")
        for key in keys if kind == "final" else [k for k in keys if k.startswith("eval/")]:
            _column_action(sub, table, Column(kind, key), key, chosen)
    sub = menu.addMenu("Plan setting")
    sub.setObjectName("settingMenu")
    offered = chooser_settings(newest_plan(store))
    for name in offered:
        _column_action(sub, table, Column("setting", name), name, chosen)
    for column in sorted((c for c in chosen if c.kind == "setting"), key=lambda c: c.key):
        if column.key not in offered:
            _column_action(sub, table, column, column.key, chosen)
    path = QLineEdit()
    path.setObjectName("runsSettingPath")
    path.setPlaceholderText("any path, e.g. stages.0.optimizer.lr ⏎")
    path.returnPressed.connect(lambda: _add_setting(menu, table, path.text()))
    holder = QWidgetAction(sub)
    holder.setDefaultWidget(path)
    sub.addAction(holder)


def _column_action(menu: QMenu, table, column: Column, label: str, chosen: set) -> QAction:
    action = menu.addAction(label)
    action.setCheckable(True)
    action.setChecked(column in chosen)
    action.setObjectName(f"column:{column.ident}")
    action.toggled.connect(lambda on, c=column: table.toggle_column(c, on))
    return action


def _add_setting(menu: QMenu, table, path: str) -> None:
    path = path.strip().strip(".")
    if path:
        menu.close()
        table.toggle_column(Column("setting", path), True)


def run_menu(table) -> QMenu:
    """The runs table's context menu on the selection: Open, Compare, a field that adds a
    tag to every selected run (Enter), and Remove tag with the tags they have."""
    runs = table.selected_runs()
    menu = QMenu(table)
    menu.addAction("Open", table._open).setEnabled(len(runs) == 1)
    menu.addAction("Compare", table._compare).setEnabled(len(runs) >= 2)
    menu.addSeparator()
    field = QLineEdit()
    field.setObjectName("addTagField")
    field.setPlaceholderText(f"add a tag to {len(runs)} run(s) ⏎")
    field.setEnabled(bool(runs))
    field.returnPressed.connect(lambda: (menu.close(), edit_tags(table, runs, add=field.text())))
    holder = QWidgetAction(menu)
    holder.setDefaultWidget(field)
    menu.addAction(holder)
    chosen = set(runs)
    present = sorted({t for r in table.model.all_rows if r.id in chosen for t in r.tags})
    remove = menu.addMenu("Remove tag")
    remove.setObjectName("removeTagMenu")
    remove.setEnabled(bool(present))
    for tag in present:
        action = remove.addAction(tag)
        action.setObjectName(f"removeTag:{tag}")
        action.triggered.connect(lambda _=False, t=tag: edit_tags(table, runs, remove=t))
    return menu


def edit_tags(table, run_ids: list[str], add: str = "", remove: str = "") -> None:
    """Add or remove one tag on several runs; a bad name is said in the table's red line."""
    from engine.store.tags import TagError, tag_run, untag_run

    store = table.store()
    try:
        for run_id in run_ids:
            tags = tag_run(store, run_id, [add]) if add else untag_run(store, run_id, [remove])
            table._replace(run_id, tags=tags)
            if run_id == table._editing:
                table.tags_edit.setText(", ".join(tags))
    except TagError as exc:
        table.search_error.setText(str(exc))
        table.search_error.show()
        return
    table.search_error.hide()


# Above this many runs the Experiments tab opens on the Runs view: the experiment tree reads
# every run's evaluation history and makes an item per cell (~5 s of CPU for 10,000 runs).
MANY_RUNS = 2000


def many_runs(store) -> bool:
    """Whether the workspace has more runs than the experiment tree shows quickly."""
    from engine.store.run_rows import run_count

    return run_count(store) > MANY_RUNS


def column_of(*parts) -> QWidget:
    """A widget holding layouts and widgets one under the other, the last stretched."""
    holder = QWidget()
    box = QVBoxLayout(holder)
    for i, part in enumerate(parts):
        stretch = 1 if i == len(parts) - 1 else 0
        box.addLayout(part) if isinstance(part, QLayout) else box.addWidget(part, stretch)
    return holder
