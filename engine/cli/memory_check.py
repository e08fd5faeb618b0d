"""Will each stage fit the chosen GPU? `stagelab validate --gpus 0,1 | --gpu-memory 24GB`
(and `stagelab run --gpus`) warn on standard error with the memory estimate of
engine/spec/memory (docs/memory.md); the exit code stays the plan check's."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from engine.cli.cli_args import UserError
from engine.spec.memory.estimate import advice, gb, too_big
from engine.spec.memory.shapes import mapping

UNITS = {"": 2**30, "b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40}


def parse_memory(text: str) -> float:
    """'24GB', '24 GiB', '512MB', '80' (GB) → bytes (binary units, as NVML counts)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", text.lower())
    unit = found.group(2).replace("i", "") if found else ""
    if found is None or unit not in UNITS or float(found.group(1)) <= 0:
        raise UserError(f"--gpu-memory must be an amount such as 24GB or 512MB (got '{text}')")
    return float(found.group(1)) * UNITS[unit]


def least_free_gpu(gpus: str) -> tuple[float, str] | None:
    """(free bytes, 'GPU 1') of the chosen GPU with the least free memory, read through NVML
    as the window's GPU picker reads it; None on the CPU or without NVML."""
    if gpus == "cpu":
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        free = []
        for index in (int(i) for i in gpus.split(",")):
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index))
            free.append((float(info.total - info.used), f"GPU {index}"))
    except Exception as exc:  # noqa: BLE001 - no library, driver or device: say so, go on
        reason = str(exc) or type(exc).__name__
        print(
            f"note: GPU memory not checked: NVML cannot read GPUs {gpus} ({reason})",
            file=sys.stderr,
        )
        return None
    return min(free)


def raw_stages(text: str) -> list[Any]:
    """The stages of a plan's text as the window edits them (raw mappings)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    stages = mapping(data).get("stages")
    return stages if isinstance(stages, list) else []


def memory_warnings(text: str, plan_dir: Path, memory: float, where: str) -> list[str]:
    """A line for every stage of the plan `text` whose estimate exceeds `memory` bytes
    (`where`: 'GPU 1 has 3.1 GB free'): the stage, the estimate and its parts, the memory,
    and what to do."""
    stages = raw_stages(text)
    lines = []
    for index, guess in too_big(stages, plan_dir, memory):
        stage = mapping(stages[index])
        parts = ", ".join(f"{name} {gb(value)}" for name, value in guess.parts())
        lines.append(
            f"warning: stage {index + 1} '{stage.get('name', '?')}' will not fit: it needs "
            f"≈ {gb(guess.total)} ({parts}) but {where}; {advice(stage)}"
        )
    return lines


def warn_memory(
    text: str,
    plan_dir: Path,
    *,
    gpus: str = "cpu",
    gpu_memory: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the warnings of `memory_warnings` for `--gpu-memory` (that much on each GPU)
    or else the `--gpus` chosen; returns how many stages will not fit."""
    if gpu_memory is not None:
        memory = parse_memory(gpu_memory)
        where = f"the GPU has {gb(memory)} (--gpu-memory)"
    else:
        found = least_free_gpu(gpus)
        if found is None:
            return 0
        memory, where = found[0], f"{found[1]} has {gb(found[0])} free"
    lines = memory_warnings(text, plan_dir, memory, where)
    for line in lines:
        print(line, file=out or sys.stderr)
    return len(lines)
