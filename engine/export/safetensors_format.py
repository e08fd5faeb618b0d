"""safetensors export: the output's `save_pretrained` folder as it is (copied, so the
export leaves Stagelab's workspace behind), or an adapter output with its adapters
merged into the base when asked (`--merge-adapters`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.export.request import Source
from engine.spec.outputs import CHAT_FILE, CODE_FILE


def export_safetensors(source: Source, out: Path, merge_adapters: bool) -> list[str]:
    """Write the folder; returns notes for the model card."""
    if source.kind == "adapter" and merge_adapters:
        from engine.export.loading import load_model, load_tokenizer

        load_model(source).save_pretrained(str(out))
        load_tokenizer(source).save_pretrained(str(out))
        for name in (CHAT_FILE, CODE_FILE):
            if (source.folder / name).exists():
                shutil.copy2(source.folder / name, out / name)
        return ["LoRA adapters merged into their base model (peft `merge_and_unload`)."]
    shutil.copytree(source.folder, out, dirs_exist_ok=True)
    if source.kind == "adapter":
        return [
            "LoRA adapters only (peft format); they load onto the base model named in "
            "`stagelab-adapter.json`. Export with --merge-adapters for one whole model."
        ]
    return []
