"""The Devices dock: where a run trains ("This machine" or a stored target) above the GPU
picker. A target's GPUs are the ones its last check found (Run → Targets… → Check); the
GPU picker lists them, ticked as on this machine, and Run starts the run there. A Slurm
target's list is what each node of its jobs gets (its nodes, GPUs per node, partition):
Slurm picks the nodes and gives the GPUs, so there is nothing to tick."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model.devices import Gpu
from app.qt.qt_elided_label import QtElidedLabel

if TYPE_CHECKING:
    from app.qt.qt_gpu_picker import QtGpuPicker
    from engine.store.workspace import Workspace

HERE = "This machine"


class TargetGpus:
    """A GPU monitor for the GPU picker that reads a target's last check instead of NVML
    (nothing is polled: `available` is False, so the picker's timer stays off)."""

    available = False
    local = False  # GPUs of this machine's runs are not the target's

    def __init__(
        self, name: str, check: dict[str, Any] | None, slurm: dict[str, Any] | None = None
    ):
        self.name, self.check, self.slurm = name, check, slurm
        if check is None:
            self.reason = f"'{name}' not checked yet: Run → Targets… → Check"
        elif not check.get("ok"):
            self.reason = f"the last check of '{name}' failed: Run → Targets… → Check"
        else:
            self.reason = f"'{name}', checked {_ago(check.get('ms', 0))}"

    def read(self) -> list[Gpu]:
        if not self.check or not self.check.get("ok"):
            return []
        out = []
        for g in self.check.get("gpus") or []:
            total = int(g.get("total", 0)) // 2**20
            free = int(g.get("free", 0)) // 2**20
            out.append(Gpu(int(g["index"]), str(g.get("name", "GPU")), total - free, total, -1))
        return out

    def rows(self) -> list[tuple[str, str]] | None:
        """A Slurm target's lines (text, tooltip): the GPUs each node of its jobs gets from
        the target's Slurm settings, not the login node's; None for an SSH target."""
        if self.slurm is None:
            return None
        from engine.remote.slurm_script import SlurmOptions

        options = SlurmOptions.from_mapping(self.slurm)
        known = {p.get("name"): p for p in (self.check or {}).get("partitions") or []}
        default = next((n for n, p in known.items() if p.get("default")), None)
        partition = options.partition or default
        words = f"partition {partition}" if partition else "the default partition"
        tip = (
            f"Slurm gives each job of '{self.name}' these on nodes it picks ({words}); "
            "change them in Run → Targets… (nodes, GPUs per node, partition)"
        )
        count = options.gpus_per_node
        has = (
            ("GPU 0" if count == 1 else f"{count} GPUs (0–{count - 1})")
            if count
            else "CPU, 1 process (no GPUs per node set)"
        )
        rows = [
            (f"Node {n + 1} of {options.nodes}: {has}", tip) for n in range(min(options.nodes, 4))
        ]
        if options.nodes > 4:
            rows.append((f"… and {options.nodes - 4} more nodes alike", tip))
        found = known.get(partition)
        if found:
            gres = "" if found.get("gres") in ("", "(null)", None) else f", {found['gres']}"
            limit = found.get("time_limit")
            said = f"Partition {partition}: {found.get('nodes')} node(s){gres}, time limit {limit}"
            rows.append((said, f"{tip}; the partition as sinfo said at the last check"))
        else:
            rows.append((f"Partition {partition}" if partition else "The default partition", tip))
        return rows


def _ago(ms: int) -> str:
    minutes = max(0, int(time.time() - ms / 1000) // 60)
    return "just now" if minutes < 1 else f"{minutes} min ago" if minutes < 120 else "earlier"


class QtTargetPicker(QWidget):
    """ "Train on" (this machine or a target) and the GPU picker under it; `targetChosen`
    with the target's name, or "" for this machine."""

    targetChosen = Signal(str)

    def __init__(self, store_getter, workspace: Workspace, gpu_picker: QtGpuPicker, parent=None):
        super().__init__(parent)
        self.setObjectName("devicesPanel")
        self.store, self.workspace, self.gpu_picker = store_getter, workspace, gpu_picker
        self._here_monitor = gpu_picker.monitor
        self.combo = QComboBox()
        self.combo.setObjectName("targetPicker")
        self.combo.setAccessibleName("Train on")
        self.combo.setToolTip("Where Run trains: this machine, or a target (Run → Targets…)")
        self.combo.addItem(HERE, "")
        # The dock shares the left column with the stage palette: a long target name must
        # not widen it (at 1024 px the main tabs would no longer fit).
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.combo.setMinimumContentsLength(6)
        self.combo.currentIndexChanged.connect(self._chosen)
        self.targets_button = QToolButton()
        self.targets_button.setText("…")
        self.targets_button.setToolTip("Targets… (add, check or remove machines to train on)")
        self.targets_button.setObjectName("targetsButton")
        self.targets_button.setAccessibleName("Targets")
        self.targets_button.clicked.connect(self.edit_targets)
        self.where = QtElidedLabel("")
        self.where.setObjectName("targetWhere")
        self.where.setStyleSheet("color: palette(placeholder-text);")
        self.where.hide()
        row = QHBoxLayout()
        row.setContentsMargins(4, 4, 4, 0)
        row.addWidget(QLabel("Train on"))
        row.addWidget(self.combo, 1)
        row.addWidget(self.targets_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        where_row = QHBoxLayout()
        where_row.setContentsMargins(6, 0, 4, 0)
        where_row.addWidget(self.where)
        layout.addLayout(where_row)
        layout.addWidget(gpu_picker, 1)
        self._loaded = False

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._loaded:  # the store is opened when the dock is first seen
            self._loaded = True
            self.reload()

    def target_name(self) -> str:
        """The chosen target, or "" for this machine."""
        return self.combo.currentData() or ""

    def reload(self, choose: str | None = None) -> None:
        """List the stored targets again (keeps the choice while the target exists)."""
        from engine.store.peek import stored_targets

        choose = self.target_name() if choose is None else choose
        # No store opened for the list: this runs at the window's first paint (cold start).
        infos = stored_targets(self.workspace.db_path)  # none while the database is locked
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(HERE, "")
        for info in infos:
            self.combo.addItem(info.name, info.name)
            self.combo.setItemData(self.combo.count() - 1, info.url, Qt.ItemDataRole.ToolTipRole)
        index = max(0, self.combo.findData(choose))
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        self._chosen()

    def choose(self, name: str) -> None:
        """Pick a target by name ("" for this machine)."""
        if not self._loaded:
            self._loaded = True
        self.reload(choose=name)

    def _chosen(self, *_: object) -> None:
        name = self.target_name()
        if name:
            from engine.remote.target_checks import check_words, last_check
            from engine.store import queries

            try:
                info = queries.get_target(self.store(), name)
            except queries.NotFound:
                info = None
            options = info.options if info else {}
            slurm = options.get("slurm") or {} if _is_slurm(info) else None
            self.gpu_picker.use_monitor(TargetGpus(name, last_check(options), slurm))
            self.where.setText(f"{info.url if info else name} · {check_words(options)}")
            self.where.setToolTip(self.where.text())
        else:
            self.gpu_picker.use_monitor(self._here_monitor)
        self.where.setVisible(bool(name))
        self.targetChosen.emit(name)

    def edit_targets(self) -> None:
        """Run → Targets…: the dialog; the list here follows what it changed."""
        from app.qt.remote.qt_targets_dialog import QtTargetsDialog

        dialog = QtTargetsDialog(self.store, self.workspace, self.window())
        dialog.targetsChanged.connect(self.reload)
        if self.target_name():
            dialog.select(self.target_name())
        dialog.exec()
        dialog.deleteLater()


def _is_slurm(info: Any) -> bool:
    return info is not None and str(info.url).lower().startswith("slurm")
