"""What a stage output folder holds, read without torch: the task its model was saved
for (from `architectures` in config.json) and its labels. Shared by `stagelab predict`,
which checks a folder before it loads torch, and by the predictor."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.spec.outputs import member_folders

TASKS = ("sequence_classification", "token_classification", "causal_lm", "masked_lm")
# Class-name endings of transformers' model classes, per task.
ARCHITECTURE_ENDINGS = (
    ("ForSequenceClassification", "sequence_classification"),
    ("ForTokenClassification", "token_classification"),
    ("ForCausalLM", "causal_lm"),
    ("LMHeadModel", "causal_lm"),
    ("ForMaskedLM", "masked_lm"),
)


class OutputError(ValueError):
    """The folder is no model the playground can run; the message says what to do."""


@dataclass(frozen=True)
class OutputInfo:
    """A stage output folder and what its model predicts."""

    folder: Path
    task: str
    architecture: str
    labels: list[str] = field(default_factory=list)  # classification tasks, in id order


def task_of(architecture: str) -> str | None:
    """The task of a transformers class name ('BertForSequenceClassification' ->
    'sequence_classification'), None for a class without a head we can run."""
    for ending, task in ARCHITECTURE_ENDINGS:
        if architecture.endswith(ending):
            return task
    return None


def read_output(folder: str | Path) -> OutputInfo:
    """Check that `folder` is a saved model with a head we can run, and say which.

    Raises:
        OutputError: the folder is missing, holds no model (or only an adapter), or its
            config.json cannot be read or names no known head.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise OutputError(
            f"{path} is not a folder; name a stage output folder or RUN[:STAGE] "
            "(`stagelab show RUN` lists each stage's output)"
        )
    ensemble = _ensemble_info(path)
    if ensemble is not None:
        return ensemble
    config_file = path / "config.json"
    members = member_folders(path)
    if members and not config_file.exists():
        raise OutputError(
            f"{path} is a joint stage's output with a model per member; name one of its "
            f"folders: {', '.join(str(p) for p in members.values())}"
        )
    if not config_file.exists():
        if (path / "adapter_config.json").exists():
            raise OutputError(
                f"{path} holds a LoRA adapter without its base model; save the stage with "
                "adapter output 'merged' (the default) to try it here"
            )
        raise OutputError(
            f"{path} holds no saved model (config.json missing); name the output folder "
            "of a finished stage"
        )
    try:
        config: Any = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputError(f"{config_file} cannot be read ({exc}); the folder is damaged") from None
    if not isinstance(config, dict):
        raise OutputError(f"{config_file} holds no model configuration; the folder is damaged")
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not architectures:
        raise OutputError(
            f"{config_file} names no model class (architectures); save the model with "
            "`save_pretrained` of a model with a head"
        )
    architecture = str(architectures[0])
    task = task_of(architecture)
    if task is None:
        raise OutputError(
            f"{path} holds a {architecture}, which has no head to predict with; pick the "
            "output of a classification, causal-LM or masked-LM stage"
        )
    if task == "sequence_classification" and config.get("problem_type") == "regression":
        task = "sequence_regression"  # one number per text, not a label
    return OutputInfo(
        path, task, architecture, _labels(config) if task.endswith("classification") else []
    )


def _ensemble_info(path: Path) -> OutputInfo | None:
    """An ensemble stage's output (engine/models/ensemble.py's manifest), as a classifier."""
    try:
        manifest: Any = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != "stagelab-ensemble":
        return None
    members = manifest.get("members") or []
    architecture = f"ensemble ({manifest.get('combiner')} of {len(members)} members)"
    labels = [str(v) for v in manifest.get("labels") or []]
    return OutputInfo(path, "sequence_classification", architecture, labels)


def _labels(config: dict[str, Any]) -> list[str]:
    id2label = config.get("id2label") or {}
    try:
        pairs = sorted((int(k), str(v)) for k, v in id2label.items())
    except (AttributeError, ValueError):
        return []
    return [name for _, name in pairs]
