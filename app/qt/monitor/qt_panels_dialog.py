"""The panel editor (`QtPanelsDialog`): the monitor's panels in order, each with its title
and the metrics it shows, by name or pattern (`eval/accuracy*`, `!eval/loss` to leave one
out); Add, Remove, Move up / down, Default; what each panel matches among the run's
metrics is listed as it is typed."""

from __future__ import annotations

import copy

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.model.panels import PanelLayout, default_layout


class QtPanelsDialog(QDialog):
    def __init__(
        self,
        chosen: PanelLayout,
        keys: list[str],
        default: PanelLayout | None = None,
        parent: QWidget | None = None,
    ):
        """`chosen`: the layout edited (in place); `keys`: the open run's metrics;
        `default`: what Default restores (the default for the plan's stage kinds)."""
        super().__init__(parent)
        self.default = default or default_layout()
        self.setObjectName("panelsDialog")
        self.setWindowTitle("Panels")
        self.chosen = chosen
        self.keys = list(keys)
        self.panel_list = QListWidget()
        self.panel_list.setObjectName("panelList")
        self.panel_list.setAccessibleName("Panels")
        self.panel_list.currentRowChanged.connect(self._show_panel)
        self.title_edit = QLineEdit()
        self.title_edit.setObjectName("panelTitle")
        self.title_edit.textEdited.connect(self._title_edited)
        self.metrics_edit = QLineEdit()
        self.metrics_edit.setObjectName("panelMetrics")
        self.metrics_edit.setPlaceholderText("eval/accuracy*, train/loss, !eval/loss")
        self.metrics_edit.setToolTip(
            "Metric names or patterns, separated by commas: * matches anything; a pattern "
            "starting with ! leaves the metrics it matches out"
        )
        self.metrics_edit.textEdited.connect(self._metrics_edited)
        self.matches = QLabel()
        self.matches.setObjectName("panelMatches")
        self.matches.setWordWrap(True)
        buttons = QVBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for text, name, slot in (
            ("Add", "addPanel", self.add_panel),
            ("Remove", "removePanel", self.remove_panel),
            ("Move up", "panelUp", lambda: self.move_panel(-1)),
            ("Move down", "panelDown", lambda: self.move_panel(1)),
            ("Default", "defaultPanels", self.default_panels),
        ):
            button = QPushButton(text)
            button.setObjectName(name)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.buttons[name] = button
        buttons.addStretch(1)
        form = QFormLayout()
        form.addRow("Title", self.title_edit)
        form.addRow("Metrics", self.metrics_edit)
        form.addRow("Shows", self.matches)
        top = QHBoxLayout()
        top.addWidget(self.panel_list, 1)
        top.addLayout(buttons)
        self.box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.box.accepted.connect(self.accept)
        self.box.rejected.connect(self.reject)
        outer = QVBoxLayout(self)
        outer.addLayout(top, 1)
        outer.addLayout(form)
        outer.addWidget(self.box)
        self.resize(560, 380)
        self._fill(0)

    def _fill(self, row: int) -> None:
        self.panel_list.blockSignals(True)
        self.panel_list.clear()
        self.panel_list.addItems(self.chosen.titles())
        self.panel_list.blockSignals(False)
        self.panel_list.setCurrentRow(min(row, self.panel_list.count() - 1))
        self._show_panel(self.panel_list.currentRow())

    def _current(self):
        row = self.panel_list.currentRow()
        return self.chosen.panels[row] if 0 <= row < len(self.chosen.panels) else None

    def _show_panel(self, _row: int) -> None:
        panel = self._current()
        for edit in (self.title_edit, self.metrics_edit):
            edit.setEnabled(panel is not None)
        self.title_edit.setText(panel.title if panel else "")
        self.metrics_edit.setText(", ".join(panel.patterns) if panel else "")
        self.buttons["removePanel"].setEnabled(len(self.chosen.panels) > 1)
        self._show_matches()

    def _show_matches(self) -> None:
        panel = self._current()
        if panel is None:
            self.matches.setText("")
            return
        shown = [k for k in self.keys if panel.holds(k)]
        if not self.keys:
            self.matches.setText("(no run open: the metrics it matches appear once one is)")
        else:
            self.matches.setText(", ".join(shown) if shown else "nothing in this run yet")

    def _title_edited(self, text: str) -> None:
        panel = self._current()
        if panel is not None and text.strip() and text.strip() not in self.chosen.titles():
            panel.title = text.strip()
            self.panel_list.currentItem().setText(panel.title)

    def _metrics_edited(self, text: str) -> None:
        panel = self._current()
        if panel is not None:
            panel.patterns = [p.strip() for p in text.split(",") if p.strip()]
            self._show_matches()

    def add_panel(self) -> None:
        self.chosen.add("Panel", ["eval/*"])
        self._fill(len(self.chosen.panels) - 1)
        self.title_edit.setFocus()
        self.title_edit.selectAll()

    def remove_panel(self) -> None:
        panel = self._current()
        if panel is not None and len(self.chosen.panels) > 1:
            row = self.panel_list.currentRow()
            self.chosen.remove(panel.title)
            self._fill(row)

    def move_panel(self, by: int) -> None:
        panel = self._current()
        if panel is not None:
            self.chosen.move(panel.title, by)
            self._fill(self.chosen.titles().index(panel.title))

    def default_panels(self) -> None:
        self.chosen.panels = copy.deepcopy(self.default.panels)
        self._fill(0)

    def accept(self) -> None:
        # A panel left without any metric shows nothing: it is dropped.
        kept = [p for p in self.chosen.panels if any(not m.startswith("!") for m in p.patterns)]
        self.chosen.panels = kept or copy.deepcopy(self.default.panels)
        super().accept()
