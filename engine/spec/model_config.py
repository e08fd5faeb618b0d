"""What a brought model's `config.json` tells validate and the engine before anything is
loaded, read with json alone (issue 29, item 2): whether loading it runs code from the
model's folder (`trust_remote_code`), and how many positions it has (the default
`max_length`). A stage's model is followed through `from_stage` to the folder or Hub id
it started from: positions and code do not change between stages.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from engine.spec.hub_cache import hub_repo_dir, model_sources
from engine.spec.problems import Problem
from engine.spec.settings import DataSource, ModelSource

DEFAULT_MAX_LENGTH = 128  # a built-in model's (its positions are sized from it)
MAX_LENGTH_CAP = 512  # the longest default: longer rows only on request
# Config keys that give the number of positions, in the order transformers' families use.
POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length")
# Encoders whose position ids start after the padding id (RoBERTa's offset of 2).
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "data2vec-text", "longformer")


def root_source(stages: list[Any], source: ModelSource) -> ModelSource | None:
    """The folder, Hub id or built-in a model source descends from (None if unknown)."""
    names = [getattr(s, "name", None) for s in stages]
    for _ in range(len(stages) + 1):
        if not source.from_stage:
            return source
        if source.from_stage not in names:
            return None
        earlier = stages[names.index(source.from_stage)]
        if source.member:
            members = getattr(earlier, "members", None) or []
            member = next((m for m in members if m.name == source.member), None)
            model = getattr(member, "model", None) if member is not None else None
            source = model or getattr(earlier, "model", None)
        else:
            source = getattr(earlier, "model", None)
        if source is None:
            return None
    return None


def hub_folder(hub: str, revision: str | None = None) -> Path:
    """The snapshot folder of a Hub id in the local Hugging Face cache (may not exist)."""
    repo = hub_repo_dir(hub)
    ref = revision or "main"
    try:
        commit = (repo / "refs" / ref).read_text().strip()
    except OSError:
        commit = ref
    return repo / "snapshots" / commit


def source_config(source: ModelSource | None, plan_dir: Path | None) -> dict[str, Any] | None:
    """The config.json of a folder or cached Hub id, None for a built-in or one not found."""
    if source is None:
        return None
    if source.path:
        path = Path(source.path).expanduser()
        if not path.is_absolute():
            if plan_dir is None:
                return None
            path = plan_dir / path
    elif source.hub:
        path = hub_folder(source.hub, source.revision)
    else:
        return None
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@cache
def known_model_types() -> frozenset[str] | None:
    """The model types the installed transformers has classes for, read from its source
    files (importing it would import torch); None if they cannot be read."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        return None
    auto = Path(spec.origin).parent / "models" / "auto"
    names: set[str] = set()
    for file in ("auto_mappings.py", "configuration_auto.py"):
        try:
            text = (auto / file).read_text(encoding="utf-8")
        except OSError:
            continue
        names.update(re.findall(r'\(\s*"([\w.-]+)",\s*"\w+Config"\s*\)', text))
        names.update(re.findall(r'"([\w.-]+)":\s*"\w+Config"', text))
    # Too few found: the files changed shape; better not to refuse anything then.
    return frozenset(names) if len(names) > 50 else None


def remote_code_reason(config: dict[str, Any]) -> str | None:
    """Why loading a model of this config runs code from its folder, or None."""
    if config.get("auto_map"):
        return "its config.json names its own classes (auto_map)"
    model_type = config.get("model_type")
    known = known_model_types()
    if isinstance(model_type, str) and known is not None and model_type not in known:
        return f"the installed transformers does not know its model type '{model_type}'"
    return None


def check_remote_code(
    stages: list[Any], i: int, stage: Any, plan_dir: Path | None
) -> list[Problem]:
    """A model whose folder's code would run is refused unless its source allows it."""
    problems = []
    for where, source in model_sources(stage, f"stages[{i}]"):
        root = root_source(stages, source)
        config = source_config(root, plan_dir)
        reason = remote_code_reason(config) if config else None
        if reason and not source.trust_remote_code:
            problems.append(
                Problem(
                    f"{where}.trust_remote_code",
                    f"loading this model runs code from its folder: {reason}; if you trust "
                    f"that code, set {where.rpartition('.')[2]}.trust_remote_code: true",
                )
            )
    return problems


def config_positions(config: dict[str, Any]) -> int | None:
    """The longest row a model of this config reads, if its config says."""
    for key in POSITION_KEYS:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            if config.get("model_type") in OFFSET_POSITIONS:
                value -= int(config.get("pad_token_id") or 0) + 1
            return value
    return None


def settle_max_lengths(plan: Any, plan_dir: Path | None) -> None:
    """Give every data source of the plan that does not set `max_length` the default of
    the models that read it: their positions, at most MAX_LENGTH_CAP (a built-in model
    keeps DEFAULT_MAX_LENGTH). Called on the plan the engine runs, before any stage."""
    stages = list(plan.stages)
    for stage in stages:
        sources = [s for _, s in model_sources(stage, "")]
        readers: list[tuple[DataSource, list[ModelSource]]] = []
        members = [m for m in getattr(stage, "members", None) or [] if hasattr(m, "data")]
        for member in members:
            readers.append((member.data, [member.model or stage.model]))
        data = getattr(stage, "data", None)
        if isinstance(data, DataSource):
            readers.append((data, sources))
        for data, models in readers:
            if data is None or "max_length" in data.model_fields_set:
                continue
            configs = [
                source_config(root_source(stages, s), plan_dir) for s in models if s is not None
            ]
            default = default_max_length(configs)
            if default is not None:
                data.max_length = default


def default_max_length(configs: list[dict[str, Any] | None]) -> int | None:
    """The `max_length` of data read by models of these configs when the plan leaves it
    out: their fewest positions, at most MAX_LENGTH_CAP; None when no config says (a
    built-in model's data keeps DEFAULT_MAX_LENGTH). The run (settle_max_lengths) and the
    memory estimate (engine/spec/memory/shapes.py) both take it from here."""
    known = [n for n in (config_positions(c) for c in configs if c) if n]
    return max(8, min(min(known), MAX_LENGTH_CAP)) if known else None
