"""Checkpoints: everything needed to continue a stage exactly where it stopped.

A checkpoint is a folder `stage<idx>-step<step>/` with the model weights (safetensors) and
`state.pt` (optimizer, scheduler, scaler, every RNG state, data position, counters). It is
written under a temporary name, flushed to disk and renamed, so a crash mid-write leaves
the previous checkpoint intact. `state.pt` only holds tensors and plain containers and is
read with `weights_only=True`.

Saving is two halves so that the disk write can leave the training thread: `take_snapshot`
copies every tensor to host memory (on the training thread, at the step being saved) and
`write_snapshot` writes that copy (on any thread; `engine/runtime/checkpoint_writer.py`).
`save_checkpoint` does both at once.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import _remove_duplicate_names, load_model, save_file

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


def _fsync_dir(path: Path) -> None:
    # The rename itself is durable only once its folder's entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _weights_file(name: str) -> str:
    # The primary model keeps the historic file name, so older checkpoints still load.
    return MODEL_FILE if name == "model" else f"{name}.safetensors"


@dataclass
class Snapshot:
    """A checkpoint's content in host memory, owned by nobody else.

    Attributes:
        weights: safetensors file name -> (tensors, metadata), one file per module.
        state: the state dict with every tensor copied.
        ready: on CUDA, recorded after the device-to-host copies; wait on it before reading.
        buffers: every copy, in the order taken; the next snapshot may copy into them.
    """

    weights: dict[str, tuple[dict[str, torch.Tensor], dict[str, str] | None]]
    state: dict[str, Any]
    ready: Any = None
    buffers: list[torch.Tensor] = field(default_factory=list)


class _Copier:
    """Copies tensors to host memory: into an earlier snapshot's buffers where they fit
    (fresh memory costs more to fault in than to copy), else into new ones, pinned for
    asynchronous copies from a GPU."""

    def __init__(self, reuse: Snapshot | None) -> None:
        self.device: torch.device | None = None
        self._spare = iter(reuse.buffers if reuse is not None else ())
        self.buffers: list[torch.Tensor] = []

    def tensor(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        cuda = t.device.type == "cuda"
        out = next(self._spare, None)
        if out is None or out.shape != t.shape or out.dtype != t.dtype:
            out = torch.empty(t.shape, dtype=t.dtype, pin_memory=cuda)
        # A real copy, never a view: training updates the weights and optimizer moments in
        # place as soon as save() returns, while the writer thread still reads this. From a
        # GPU it is queued on the training stream, so those updates come after it.
        out.copy_(t, non_blocking=cuda)
        if cuda:
            self.device = t.device
        self.buffers.append(out)
        return out

    def tree(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return self.tensor(obj)
        if isinstance(obj, dict):
            return {k: self.tree(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.tree(v) for v in obj)
        return obj


def take_snapshot(
    modules: dict[str, torch.nn.Module], state: dict[str, Any], reuse: Snapshot | None = None
) -> Snapshot:
    """Copy a checkpoint's tensors to host memory, as they are now.

    Tied weights (an MLM decoder sharing the embedding matrix) are stored once, with the
    names of the others in the file's metadata, exactly as safetensors' `save_model` does,
    so `load_model` loads old and new checkpoints alike.

    Args:
        modules: the trained modules by name (`model` is the primary one).
        state: optimizer/scheduler/scaler state dicts, RNG states, data positions, counters.
        reuse: an earlier snapshot that nothing reads any more (written): its buffers are
            copied into, so a stage's checkpoints do not allocate host memory each time.
    """
    copier = _Copier(reuse)
    weights = {}
    for name, module in modules.items():
        tensors = module.state_dict()
        metadata: dict[str, str] = {}
        # The sharing is seen on the live tensors only: copies share nothing.
        for kept, removed in _remove_duplicate_names(tensors).items():
            for other in removed:
                metadata.setdefault(other, kept)
                del tensors[other]
        weights[_weights_file(name)] = (copier.tree(tensors), metadata or None)
    copied = copier.tree(state)
    ready = None
    if copier.device is not None:
        # One sync point for all copies, waited on by the writer, not the training thread.
        ready = torch.cuda.Event()
        ready.record(torch.cuda.current_stream(copier.device))
    return Snapshot(weights, copied, ready, copier.buffers)


def write_snapshot(folder: Path, snapshot: Snapshot) -> Path:
    """Write a snapshot as a checkpoint folder atomically and return its final path.

    A failed write leaves no temporary folder behind and the earlier checkpoints as they
    were.

    Args:
        folder: final path, e.g. runs/<id>/checkpoints/stage1-step200.
        snapshot: what `take_snapshot` copied.
    """
    if snapshot.ready is not None:
        snapshot.ready.synchronize()
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        for file, (tensors, metadata) in snapshot.weights.items():
            save_file(tensors, str(tmp / file), metadata=metadata)
        torch.save(snapshot.state, tmp / STATE_FILE)
        _fsync_tree(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(folder.parent)
    return folder


def save_checkpoint(
    folder: Path, modules: dict[str, torch.nn.Module], state: dict[str, Any]
) -> Path:
    """Write a checkpoint folder atomically, on this thread, and return its final path.

    Args:
        folder: final path, e.g. runs/<id>/best/stage1-step200.
        modules: the trained modules by name (`model` is the primary one), one
            safetensors file each.
        state: optimizer/scheduler/scaler state dicts, RNG states, data positions, counters.
    """
    return write_snapshot(folder, take_snapshot(modules, state))


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
