"""Hub ids in the local Hugging Face cache, found with the standard library (issue 29,
item 5): a stage whose model is a Hub id works offline when the id is in the cache, and
validate refuses one that is not while downloads are off, naming the folder it looked in.

The cache is where huggingface_hub puts it: HF_HUB_CACHE, else HF_HOME/hub, else
$XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; a repository is
`models--<org>--<name>` with `refs/<branch>` naming the commit under `snapshots/`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.spec.problems import Problem
from engine.spec.settings import ModelSource

TRUE = ("1", "on", "yes", "true")


def hub_cache_dir() -> Path:
    """The folder huggingface_hub keeps downloaded repositories in."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "huggingface" / "hub"


def hub_repo_dir(hub: str) -> Path:
    """The cache folder of a model repository (it may not exist)."""
    return hub_cache_dir() / ("models--" + hub.replace("/", "--"))


def hub_snapshot(hub: str, revision: str | None = None) -> Path | None:
    """The cached snapshot of a Hub model at `revision` (a branch, tag or commit; default
    main) if it holds a config.json, else None."""
    repo = hub_repo_dir(hub)
    ref = revision or "main"
    try:
        commit = (repo / "refs" / ref).read_text(encoding="utf-8").strip()
    except OSError:
        commit = ref  # a commit hash names its snapshot directly
    if "/" in commit or commit in ("", ".", ".."):
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if (snapshot / "config.json").is_file() else None


def downloads_off() -> bool:
    """Whether the Hugging Face libraries may not download (HF_HUB_OFFLINE)."""
    return any(
        os.environ.get(name, "").strip().lower() in TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def model_sources(stage: Any, p: str) -> list[tuple[str, ModelSource]]:
    """(path in the plan, source) of every model a stage loads."""
    found = []
    for field in ("model", "teacher"):
        source = getattr(stage, field, None)
        if isinstance(source, ModelSource):
            found.append((f"{p}.{field}", source))
    for k, member in enumerate(getattr(stage, "members", None) or []):
        if isinstance(member, ModelSource):
            found.append((f"{p}.members[{k}]", member))
        elif isinstance(getattr(member, "model", None), ModelSource):
            found.append((f"{p}.members[{k}].model", member.model))
    return found


def check_hub_models(stage: Any, i: int, plan_dir: Path | None) -> list[Problem]:
    """Hub models that are not in the cache while downloads are off; checked with the
    plan's folder, as its local files are (the plan is validated where it runs)."""
    if plan_dir is None or not downloads_off():
        return []
    problems = []
    for where, source in model_sources(stage, f"stages[{i}]"):
        if not source.hub:
            continue
        if hub_snapshot(source.hub, source.revision) is not None:
            continue
        at = f" at revision '{source.revision}'" if source.revision else ""
        problems.append(
            Problem(
                f"{where}.hub",
                f"'{source.hub}'{at} is not in the local Hugging Face cache (looked in "
                f"{hub_repo_dir(source.hub)}) and downloads are off (HF_HUB_OFFLINE); "
                "download it once where the network is reachable, point HF_HUB_CACHE or "
                "HF_HOME at the cache that holds it, or give the model's folder as path",
            )
        )
    return problems
