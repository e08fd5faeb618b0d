"""The "Sweep this setting" entry in the context menu of an inspector field's label. Apart
from the sweep form (`qt_sweep_form.py`): every label of the inspector gets one at start-up,
while the form and its dialog classes are needed only once the menu is used."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu, QWidget

from app.model.schema_fields import FieldSpec
from app.model.sweep_edit import SWEEPABLE_KINDS


def add_sweep_menu(inspector: Any, widget: QWidget, keys: tuple[str, ...], spec: FieldSpec) -> None:
    """ "Sweep this setting" in the context menu of a field's label in the inspector."""
    if spec.kind not in SWEEPABLE_KINDS:
        return
    widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show_menu(pos) -> None:
        from app.qt.sweep.qt_sweep_form import sweep_setting

        menu = QMenu(widget)
        action = menu.addAction("Sweep this setting")
        action.setObjectName("sweepThisSetting")
        action.triggered.connect(lambda: sweep_setting(inspector, keys, spec))
        menu.exec(widget.mapToGlobal(pos))

    widget.customContextMenuRequested.connect(show_menu)
    widget.setToolTip(f"{widget.toolTip()}\nRight click: sweep this setting".strip())
