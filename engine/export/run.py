"""One export from start to end: check the request (no torch), write the format into the
output folder (an ensemble: its manifest and each member in that format), check parity,
and write the model card. `say` gets progress lines ('[2/4] …') for the terminal and
the window's dialog."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from engine.export.card import card_text
from engine.export.request import ENSEMBLE_MANIFEST, Request, Source, check, describe
from engine.export.rows import check_texts


def export(request: Request, say: Callable[[str], None] = print) -> list[str]:
    """Run the export; returns the parity sentences (none for safetensors).

    Raises:
        ExportError: a request the format cannot do (nothing is written).
        ParityError: the exported model computes other logits (the files stay, for a look).
    """
    sources = check(request)
    out = request.out.expanduser()
    source = describe(request.folder)
    steps = len(sources) + 2
    say(f"[1/{steps}] checked: {len(sources)} model(s) to {request.fmt}")
    texts, what = ([], "")
    if request.fmt != "safetensors":
        texts, what = check_texts(request.rows)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[str] = []
    notes: list[str] = []
    if source.kind == "ensemble":
        manifest = json.loads((source.folder / ENSEMBLE_MANIFEST).read_text(encoding="utf-8"))
        shutil.copy2(source.folder / ENSEMBLE_MANIFEST, out / ENSEMBLE_MANIFEST)
        notes.append(
            f"An ensemble ({manifest.get('combiner')}) of {len(sources)} members: "
            f"{ENSEMBLE_MANIFEST} names them, each exported under members/."
        )
        for i, (entry, member) in enumerate(zip(manifest["members"], sources, strict=True)):
            say(f"[{i + 2}/{steps}] member '{entry['name']}'")
            where = out / entry["folder"]
            where.mkdir(parents=True, exist_ok=True)
            found, _ = _one(member, request, where, texts, what)
            figures += [f"member '{entry['name']}': {line}" for line in found]
    else:
        say(f"[2/{steps}] exporting {request.provenance.stage or source.folder.name}")
        figures, notes = _one(source, request, out, texts, what)
    say(f"[{steps}/{steps}] writing the model card")
    (out / "README.md").write_text(
        card_text(request.provenance, request.fmt, figures, notes), encoding="utf-8"
    )
    return figures


def _one(
    source: Source, request: Request, out: Path, texts: list[str], what: str
) -> tuple[list[str], list[str]]:
    """Export one model folder into `out`: (parity sentences, card notes)."""
    if request.fmt == "safetensors":
        from engine.export.safetensors_format import export_safetensors

        return [], export_safetensors(source, out, request.merge_adapters)
    merged = ["LoRA adapters merged into their base model."] if source.kind == "adapter" else []
    if request.fmt == "onnx":
        from engine.export.onnx_format import export_onnx

        _, sentence = export_onnx(source, out, texts, what)
        return [sentence], merged
    from engine.export.gguf_format import export_gguf

    return export_gguf(source, out, texts, what, request.gguf_types), merged
