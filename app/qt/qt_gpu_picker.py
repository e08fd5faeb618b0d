"""Which devices a run trains on: GPUs from NVML with memory and load, refreshed every two
seconds; GPUs used by another Stagelab run are marked. The CPU when there is no GPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from app.model.devices import GpuMonitor, gpus_in_use, gpus_text

if TYPE_CHECKING:
    from engine.store.db import Store


class QtGpuPicker(QListWidget):
    """Tick the GPUs to train on; none ticked (or none present) means the CPU."""

    def __init__(self, store_getter: Callable[[], Store | None], parent=None, monitor=None):
        """`store_getter` gives the experiment store; it is only called when there are
        GPUs to mark, so a CPU-only start never loads the database code."""
        super().__init__(parent)
        self.setObjectName("gpuPicker")
        self.setAccessibleName("GPU picker")
        self._store = store_getter
        self.monitor = monitor or GpuMonitor()
        self._chosen: set[int] = set()
        self.gpus: list = []
        self.setWordWrap(True)
        self.itemChanged.connect(self._item_changed)
        self.timer = QTimer(self, interval=2000)
        self.timer.timeout.connect(self.refresh)
        self.refresh()
        if self.monitor.available:
            self.timer.start()

    def selection(self) -> str:
        """The devices chosen, as recorded with a run: 'cpu' or '0,1'."""
        return gpus_text(sorted(self._chosen))

    def set_selection(self, text: str) -> None:
        """Choose devices from a recorded value ('cpu' or '0,1')."""
        self._chosen = {int(p) for p in text.split(",") if p.strip().isdigit()}
        self.refresh()

    def use_monitor(self, monitor) -> None:
        """Read GPUs from another monitor (a target's last check: app/qt/remote); the
        choice starts empty."""
        self.timer.stop()
        self.monitor, self._chosen = monitor, set()
        self.refresh()
        if monitor.available:
            self.timer.start()

    def free_memory(self) -> tuple[float | None, str]:
        """(free bytes, 'GPU 1') of the chosen GPU with the least free memory, as last
        read; (None, '') when the run trains on the CPU."""
        chosen = [g for g in self.gpus if g.index in self._chosen]
        if not chosen:
            return None, ""
        least = min(chosen, key=lambda g: g.memory_total_mib - g.memory_used_mib)
        return (least.memory_total_mib - least.memory_used_mib) * 2**20, f"GPU {least.index}"

    def refresh(self) -> None:
        """Re-read the GPUs and which runs use them."""
        rows = getattr(self.monitor, "rows", lambda: None)()
        if rows is not None:  # a Slurm target: what its jobs get, nothing to tick
            self.gpus, self._chosen = [], set()
            self.clear()
            for text, tip in rows:
                item = QListWidgetItem(text)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(tip)
                self.addItem(item)
            return
        gpus = self.monitor.read()
        self.gpus = gpus
        try:
            local = getattr(self.monitor, "local", True)  # a target's GPUs: not ours
            used = gpus_in_use(self._store()) if gpus and local else {}
        except Exception:  # a locked or missing database must not break the picker
            used = {}
        self._chosen &= {g.index for g in gpus}
        self.blockSignals(True)
        self.clear()
        if not gpus:
            reason = f" ({self.monitor.reason})" if self.monitor.reason else ""
            item = QListWidgetItem(f"CPU — no NVIDIA GPU found{reason}")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setToolTip("Runs train on the CPU; bf16/fp16 stages run in fp32 there.")
            self.addItem(item)
        for gpu in gpus:
            load = f"{gpu.utilization}% busy" if gpu.utilization >= 0 else "at its last check"
            text = (
                f"GPU {gpu.index}: {gpu.name} · {gpu.memory_used_mib / 1024:.1f}/"
                f"{gpu.memory_total_mib / 1024:.0f} GiB · {load}"
            )
            if gpu.index in used:
                text += f" · in use by run {used[gpu.index]}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, gpu.index)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            checked = gpu.index in self._chosen
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.addItem(item)
        self.blockSignals(False)

    def _item_changed(self, item: QListWidgetItem) -> None:
        index = item.data(Qt.ItemDataRole.UserRole)
        if index is None:
            return
        if item.checkState() == Qt.CheckState.Checked:
            self._chosen.add(index)
        else:
            self._chosen.discard(index)
