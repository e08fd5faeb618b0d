"""The environment record of a run: what ran where, so results can be traced and repeated."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from engine.data.load import fingerprint_file, resolve_path
from engine.process.server import FORKED_ENV
from engine.spec.plan import Plan

PACKAGES = (
    "stagelab",
    "torch",
    "transformers",
    "datasets",
    "tokenizers",
    "safetensors",
    "numpy",
    "pydantic",
    "SQLAlchemy",
    "alembic",
    "PyYAML",
)


def _git_revision(folder: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def environment_record(plan: Plan, plan_dir: Path, device: torch.device) -> dict[str, Any]:
    """Package versions, Python, torch/CUDA, GPUs, git revision, data fingerprints, seeds."""
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    data = {}
    for stage in plan.stages:
        source = getattr(stage, "data", None)
        if source is None:
            continue
        if source.path:
            path = resolve_path(source, plan_dir)
            files = sorted(path.iterdir()) if path.is_dir() else [path]
            for file in files:
                if file.is_file():
                    data[str(file)] = fingerprint_file(file)
        else:
            data[f"hub:{source.hub}"] = source.hub_config or ""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _versions(),
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device": str(device),
        "gpus": gpus,
        "cpu_threads": torch.get_num_threads(),
        # How the engine began: forked by an engine server (engine/process/server.py) or
        # started as a process of its own; the training is the same either way.
        "engine_start": "forked by the engine server"
        if os.environ.get(FORKED_ENV)
        else "a process of its own",
        "git_revision": _git_revision(plan_dir),
        "data_fingerprints": data,
        "seeds": {stage.name: stage.seed for stage in plan.stages},
    }
