"""What a stage's output folder holds, read without torch: one model folder, or (a joint
stage) a folder per member listed in `joint.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

JOINT_MANIFEST = "joint.json"
# Written beside a model trained on chat-rendered rows: {"chat_template": "...",
# "end_of_turn": "<|im_end|>"}, the template its prompts are rendered with when it is tried
# and the token its answers end with (engine/data/chat.py).
CHAT_FILE = "stagelab-chat.json"
# Written beside a model whose stage allowed code from its folder (`trust_remote_code: true`):
# {"trust_remote_code": true}. Its output holds that code (auto_map) and needs the same
# allowance to load; the predictor and the ensemble loader pass it on.
CODE_FILE = "stagelab-code.json"


def member_folders(output_dir: str | Path) -> dict[str, Path]:
    """A joint stage's member folders by member name; empty for any other output."""
    manifest = Path(output_dir) / JOINT_MANIFEST
    try:
        members = json.loads(manifest.read_text(encoding="utf-8"))["members"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {m["name"]: Path(output_dir) / m["folder"] for m in members}


def output_folders(output_dir: str | Path | None) -> list[str]:
    """The model folders a stage output holds: its members', or the folder itself."""
    if not output_dir:
        return []
    members = member_folders(output_dir)
    return [str(p) for p in members.values()] if members else [str(output_dir)]


def chat_template_of(folder: str | Path) -> str | None:
    """The chat template a model folder was trained with, None if it was trained on plain
    text (or the record cannot be read)."""
    return _chat_text(folder, "chat_template")


def end_of_turn_of(folder: str | Path) -> str | None:
    """The token that ends the assistant's turn in the chat a model folder was trained
    with (its generation stops there), None if not recorded."""
    return _chat_text(folder, "end_of_turn")


def _chat_text(folder: str | Path, key: str) -> str | None:
    try:
        record = json.loads((Path(folder) / CHAT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = record.get(key) if isinstance(record, dict) else None
    return value if isinstance(value, str) and value else None


def record_remote_code(folder: str | Path, source: Any) -> None:
    """Write CODE_FILE into a saved model folder if its model source (a ModelSource)
    allowed code from the model's folder."""
    if getattr(source, "trust_remote_code", False):
        (Path(folder) / CODE_FILE).write_text(json.dumps({"trust_remote_code": True}))


def trusts_remote_code(folder: str | Path) -> bool:
    """Whether the stage that wrote this model folder allowed its code to run."""
    try:
        record = json.loads((Path(folder) / CODE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("trust_remote_code") is True
