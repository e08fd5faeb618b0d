"""Devices a run can train on: NVIDIA GPUs through NVML (name, memory, utilisation), or
the CPU when there is none. The GUI never imports torch to find them. Qt-free."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) loads on first use, not at start-up
    from engine.store.db import Store


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML sees it now."""

    index: int
    name: str
    memory_used_mib: int
    memory_total_mib: int
    utilization: int  # percent


class GpuMonitor:
    """Reads GPU state through NVML; `available` is False on machines without NVIDIA
    GPUs or driver, and then `read()` returns an empty list."""

    def __init__(self) -> None:
        self.available = False
        self.reason = ""
        if not nvml_library_present():  # importing pynvml costs the window's start ~40 ms
            self.reason = "NVML Shared Library Not Found"  # pynvml's words for it
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.available = True
        except Exception as exc:  # no library, no driver, no device: the CPU it is
            self.reason = str(exc) or type(exc).__name__

    def read(self) -> list[Gpu]:
        """Every GPU with its memory and utilisation right now."""
        if not self.available:
            return []
        nvml, gpus = self._nvml, []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                try:
                    busy = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
                except nvml.NVMLError:  # some devices (MIG slices) do not report it
                    busy = 0
                gpus.append(
                    Gpu(
                        index=index,
                        name=name.decode() if isinstance(name, bytes) else str(name),
                        memory_used_mib=memory.used // 2**20,
                        memory_total_mib=memory.total // 2**20,
                        utilization=int(busy),
                    )
                )
        except nvml.NVMLError as exc:
            self.reason = str(exc)
            return []
        return gpus


def nvml_library_present() -> bool:
    """Whether the NVML library pynvml loads is there (Linux: libnvidia-ml.so.1); True
    elsewhere, where pynvml looks in several places and is left to decide."""
    if sys.platform[:3] == "win":
        return True
    import ctypes

    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def gpus_in_use(store: Store | None) -> dict[int, str]:
    """GPU index → id of the Stagelab run that is queued or training on it."""
    used: dict[int, str] = {}
    if store is None:
        return used
    from engine.store import queries
    from engine.store.status import RunStatus

    active = {RunStatus.QUEUED, RunStatus.RUNNING}  # runs that hold (or will) their GPUs
    for run in queries.list_runs(store):
        if run.status in active and run.gpus and run.gpus != "cpu":
            for part in run.gpus.split(","):
                if part.strip().isdigit():
                    used.setdefault(int(part), run.id)
    return used


def gpus_text(selected: list[int]) -> str:
    """The `--gpus` value recorded with a run: 'cpu' or indices such as '0,1'."""
    return ",".join(str(i) for i in sorted(selected)) if selected else "cpu"
