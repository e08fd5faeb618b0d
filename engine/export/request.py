"""What an export is asked to do, checked before torch loads: the output folder's kind
(a model, an adapter output, an ensemble), the formats it can go to, and where the
result lands. The command line and the window's dialog say these refusals as they are."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.predict.folder import OutputError, read_output
from engine.spec.outputs import member_folders

FORMATS = ("safetensors", "onnx", "gguf")
GGUF_TYPES = ("f16", "q8_0")
# GGUF goes through the `gguf` package's Llama tensor names and transformers' Llama reader.
GGUF_FAMILIES = ("llama",)
ENSEMBLE_MANIFEST = "manifest.json"
# engine/models/adapters.py writes it beside an adapter output (that module loads torch).
ADAPTER_RECORD = "stagelab-adapter.json"


class ExportError(ValueError):
    """A request the export cannot do; the message says why and what to do instead."""


class ParityError(RuntimeError):
    """The exported model computes other logits than the stage's own (the figure says how
    far apart)."""


@dataclass(frozen=True)
class EvalRows:
    """Where the stage's evaluation rows come from: its plan and stage (and member)."""

    plan_text: str
    plan_dir: Path
    stage: str
    member: str = ""
    cache_dir: Path | None = None


@dataclass
class Provenance:
    """What the model card says about where the model came from."""

    plan: str = ""
    run: str = ""
    stage: str = ""
    kind: str = ""
    member: str = ""
    lineage: list[str] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One export: the output folder, the format, where to write, and its options."""

    folder: Path
    fmt: str
    out: Path
    merge_adapters: bool = False
    gguf_types: tuple[str, ...] = GGUF_TYPES
    provenance: Provenance = field(default_factory=Provenance)
    rows: EvalRows | None = None


@dataclass(frozen=True)
class Source:
    """A model folder as the export sees it."""

    folder: Path
    kind: str  # "model", "adapter" or "ensemble"
    task: str = ""
    model_type: str = ""
    architecture: str = ""


def _config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _adapter_base(folder: Path) -> Path | None:
    try:
        record = json.loads((folder / ADAPTER_RECORD).read_text(encoding="utf-8"))
        return Path(record["base"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def describe(folder: Path) -> Source:
    """The kind, task and family of an output folder.

    Raises:
        ExportError: not a folder, a joint output (one model per member), or no model.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ExportError(f"{folder} is missing; name a finished stage as RUN:STAGE or a folder")
    if (folder / ENSEMBLE_MANIFEST).is_file():
        return Source(folder, "ensemble", "sequence_classification")
    if member_folders(folder) and not (folder / "config.json").exists():
        names = ", ".join(member_folders(folder))
        raise ExportError(
            f"{folder} holds a model per member ({names}); export one as RUN:STAGE:MEMBER"
        )
    base = _adapter_base(folder)
    config_folder = base if base is not None else folder
    if base is not None and not (base / "config.json").exists():
        raise ExportError(f"the adapters in {folder} need their base {base}, which is missing")
    try:
        info = read_output(config_folder)
    except OutputError as exc:
        raise ExportError(str(exc)) from None
    kind = "adapter" if base is not None else "model"
    task = "sequence_classification" if info.task == "sequence_regression" else info.task
    model_type = str(_config(config_folder).get("model_type", ""))
    return Source(folder, kind, task, model_type, info.architecture)


def check(request: Request) -> list[Source]:
    """The folders the request exports (an ensemble's members, else the folder), each
    checked against the format before torch loads.

    Raises:
        ExportError: an unknown format, or a model the format cannot hold.
    """
    if request.fmt not in FORMATS:
        raise ExportError(f"unknown format '{request.fmt}'; use one of {', '.join(FORMATS)}")
    bad = [t for t in request.gguf_types if t not in GGUF_TYPES]
    if bad:
        raise ExportError(f"unknown GGUF type '{bad[0]}'; use {' or '.join(GGUF_TYPES)}")
    source = describe(request.folder)
    sources = ensemble_members(source) if source.kind == "ensemble" else [source]
    for one in sources:
        named = f"member {one.folder.name}" if source.kind == "ensemble" else "the model"
        _check_format(one, request.fmt, named)
    out = request.out.expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not empty; name a new or empty folder")
    return sources


def ensemble_members(source: Source) -> list[Source]:
    """An ensemble output's member folders, described."""
    try:
        manifest = json.loads((source.folder / ENSEMBLE_MANIFEST).read_text(encoding="utf-8"))
        entries = manifest["members"]
        return [describe(source.folder / m["folder"]) for m in entries]
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportError(f"{source.folder / ENSEMBLE_MANIFEST} cannot be read") from None


def _check_format(source: Source, fmt: str, named: str) -> None:
    what = f"{named} is a {source.architecture}"
    if fmt == "onnx" and source.task == "causal_lm":
        raise ExportError(
            f"{what}, a decoder; ONNX export covers encoders and classifiers, so export it "
            "with --format gguf (Llama family) or --format safetensors"
        )
    if fmt == "gguf" and (source.model_type not in GGUF_FAMILIES or source.task != "causal_lm"):
        raise ExportError(
            f"{what}; GGUF export covers Llama-family causal language models only, so "
            "export it with --format safetensors or --format onnx"
        )
