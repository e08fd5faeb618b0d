"""Checkpoints: everything needed to continue a stage exactly where it stopped.

A checkpoint is a folder `stage<idx>-step<step>/` with the model weights (safetensors) and
`state.pt` (optimizer, scheduler, scaler, every RNG state, data position, counters). It is
written under a temporary name, flushed to disk and renamed, so a crash mid-write leaves
the previous checkpoint intact. `state.pt` only holds tensors and plain containers and is
read with `weights_only=True`.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.pt"


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every random generator's state: Python, NumPy, torch CPU and CUDA."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        # NumPy's state as plain lists, so that loading needs no pickled NumPy objects.
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_tree(path: Path) -> None:
    for file in path.iterdir():
        with open(file, "rb") as fh:
            os.fsync(fh.fileno())


def _weights_file(name: str) -> str:
    # The primary model keeps the historic file name, so older checkpoints still load.
    return MODEL_FILE if name == "model" else f"{name}.safetensors"


def save_checkpoint(
    folder: Path, modules: dict[str, torch.nn.Module], state: dict[str, Any]
) -> Path:
    """Write a checkpoint folder atomically and return its final path.

    Args:
        folder: final path, e.g. runs/<id>/checkpoints/stage1-step200.
        modules: the trained modules by name (`model` is the primary one), one
            safetensors file each.
        state: optimizer/scheduler/scaler state dicts, RNG states, data positions, counters.
    """
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    # save_model copes with tied weights (MLM decoders share the embedding matrix).
    for name, module in modules.items():
        save_model(module, str(tmp / _weights_file(name)))
    torch.save(state, tmp / STATE_FILE)
    _fsync_tree(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def load_checkpoint(folder: Path, modules: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """Load weights into `modules` and return the saved state (read with weights_only=True)."""
    for name, module in modules.items():
        device = str(next(module.parameters()).device)
        load_model(module, str(folder / _weights_file(name)), device=device)
    return torch.load(folder / STATE_FILE, weights_only=True, map_location="cpu")


def prune_checkpoints(folders: list[Path], keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` folders (given oldest first); returns deleted."""
    doomed = folders[:-keep_last] if keep_last else folders
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed
