"""GPU memory and utilisation of the run's device, for the channel's `gpu` messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def gpu_monitor(device: Any) -> Callable[[], list[dict[str, Any]]] | None:
    """A function that samples the run's GPU through NVML, or None on the CPU or without
    NVML (the channel then sends no `gpu` messages)."""
    if getattr(device, "type", "cpu") != "cuda":
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        index = device.index or 0
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
    except Exception:  # noqa: BLE001 - no NVML: no GPU figures, training goes on
        return None
    name = name.decode() if isinstance(name, bytes) else name

    def sample() -> list[dict[str, Any]]:
        try:
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            load = pynvml.nvmlDeviceGetUtilizationRates(handle)
        except Exception:  # noqa: BLE001
            return []
        return [
            {
                "index": index,
                "name": name,
                "memory_used": int(memory.used),
                "memory_total": int(memory.total),
                "utilization": int(load.gpu),
            }
        ]

    return sample
