"""Stage fingerprints: what a stage's result depends on, as one SHA-256.

A finished stage with the same fingerprint as a stage about to train is reused instead
(docs/engine.md, "Stage cache"). The fingerprint covers:

* the stage's settings, normalised (plain JSON, keys sorted; the name, description,
  `cache` switch and checkpoint cadence left out: they do not change what is trained);
* its inputs: the SHA-256 of every data file (a folder: every file in it), a Hub data
  set's name and configuration, a model's Hub id and revision, a local model folder's
  file hashes, and for `from_stage` the fingerprint of that earlier stage (so a change
  anywhere upstream reaches every stage downstream);
* the seed (a setting like the others);
* the engine's training-relevant version: `TRAINING_VERSION`, torch and transformers
  versions and the device type (CPU and CUDA results differ).
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.spec.plan import Plan
from engine.spec.settings import DataSource, ModelSource

# Raise when a change to the loop, a recipe, the data pipeline or the model builders
# changes what a stage trains: every cached stage is then trained again once.
TRAINING_VERSION = 4  # 2: built-in tokenizers learn from every text column (pairs, prompts)
# 3: the L1 penalty sums the matrices' norms from one multi-tensor kernel (last bits differ)
# 4: masked-LM masks max(1, round(n * p)) tokens of every row (BERT's reference masking)

# Settings that do not change a stage's result.
IGNORED = frozenset({"name", "description", "cache", "checkpoint"})

_file_hashes: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and modification time)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _file_hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _file_hashes[key] = digest.hexdigest()
    return _file_hashes[key]


def tree_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents)."""
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return f"missing:{path}"
    parts = {
        str(f.relative_to(path)): file_sha256(f) for f in sorted(path.rglob("*")) if f.is_file()
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _local(path: str, plan_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (plan_dir / p).resolve()


def _normalise(value: Any, plan_dir: Path, upstream: dict[str, str]) -> Any:
    if isinstance(value, ModelSource):
        data = value.model_dump(mode="json")
        if value.from_stage:
            data["from_stage"] = {"fingerprint": upstream.get(value.from_stage, "unknown")}
            data.pop("vocab_size", None)  # the earlier stage's tokenizer is used
        elif value.path:
            data["path"] = {"sha256": tree_sha256(_local(value.path, plan_dir))}
        return data
    if isinstance(value, DataSource):
        data = value.model_dump(mode="json")
        if value.path:
            data["path"] = {"sha256": tree_sha256(_local(value.path, plan_dir))}
        return data
    if isinstance(value, BaseModel):
        return {
            name: _normalise(getattr(value, name), plan_dir, upstream)
            for name in type(value).model_fields
        }
    if isinstance(value, (list, tuple)):
        return [_normalise(v, plan_dir, upstream) for v in value]
    return value


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def engine_version(device_type: str) -> dict[str, Any]:
    """The part of the fingerprint that belongs to the engine, not the plan."""
    return {
        "training_version": TRAINING_VERSION,
        "torch": _package("torch"),
        "transformers": _package("transformers"),
        "device": device_type,
    }


def stage_fingerprint(
    stage: Any, plan_dir: Path, upstream: dict[str, str], device_type: str = "cpu"
) -> str:
    """The fingerprint of one stage, given the fingerprints of the stages before it."""
    settings = {
        name: _normalise(getattr(stage, name), plan_dir, upstream)
        for name in type(stage).model_fields
        if name not in IGNORED
    }
    # Batch workers build the very same batches (tests/engine/train/test_feed.py).
    settings.get("batching", {}).pop("workers", None)
    blob = {"stage": settings, "engine": engine_version(device_type)}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def plan_fingerprints(plan: Plan, plan_dir: Path, device_type: str = "cpu") -> list[str]:
    """The fingerprint of every stage of a plan, in plan order."""
    by_name: dict[str, str] = {}
    found = []
    for stage in plan.stages:
        fp = stage_fingerprint(stage, plan_dir, by_name, device_type)
        by_name[stage.name] = fp
        found.append(fp)
    return found
