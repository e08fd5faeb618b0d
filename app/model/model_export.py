"""The Export model dialog's view model, Qt-free: the command it starts (`stagelab export
RUN:STAGE[:MEMBER] --format F OUT`, in a process of its own, so the window never loads
torch), the progress lines that command prints, and what the dialog says when it ends."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from app.model.playground import OutputChoice

FORMATS = {
    "safetensors": "safetensors — the model folder with its tokenizer and a model card",
    "onnx": "ONNX — encoders and classifiers, checked with ONNX Runtime",
    "gguf": "GGUF f16 + q8_0 — Llama-family decoders, loaded back to check",
}
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")
FIGURE = "max |logit difference|"


def reference(choice: OutputChoice) -> str:
    """RUN:STAGE[:MEMBER] of an output, as the command line names it."""
    ref = f"{choice.run_id}:{choice.stage}"
    return f"{ref}:{choice.member}" if choice.member else ref


def default_folder(workspace: Path | None, choice: OutputChoice, fmt: str) -> Path:
    """A new folder under the workspace's exports/ for this output and format."""
    root = (workspace or Path.home()) / "exports"
    name = "-".join(p for p in (choice.run_id, choice.stage, choice.member, fmt) if p)
    path, n = root / name, 2
    while path.exists():
        path, n = root / f"{name}-{n}", n + 1
    return path


def export_command(
    workspace: Path | None, choice: OutputChoice, fmt: str, out: Path, merge_adapters: bool
) -> list[str]:
    """Program and arguments of the export process."""
    # Frozen, the executable is the `stagelab` command itself (packaging/bundle_entry.py).
    frozen = getattr(sys, "frozen", False)
    cmd = [sys.executable] if frozen else [sys.executable, "-m", "engine.cli"]
    if workspace is not None:
        cmd += ["--workspace", str(workspace)]
    cmd += ["export", reference(choice), "--format", fmt, str(out)]
    return cmd + (["--merge-adapters"] if merge_adapters else [])


def progress(line: str) -> tuple[int, int, str] | None:
    """(done, total, what) of a progress line ('[2/4] member …'), None for other lines."""
    match = PROGRESS.match(line.strip())
    return (int(match[1]), int(match[2]), match[3]) if match else None


def outcome(code: int, out: str, err: str) -> tuple[bool, str]:
    """Whether the export worked, and what the dialog says: the parity figures and the
    folder, or the command's one-sentence refusal or failed check."""
    if code == 0:
        lines = [line for line in out.splitlines() if FIGURE in line or line.startswith("exported")]
        return True, "\n".join(lines) or "exported"
    said = [
        line.removeprefix("stagelab export: ")
        for line in err.splitlines()
        if line.startswith("stagelab export: ")
    ]
    if said:
        return False, said[-1]
    tail = [line for line in err.strip().splitlines() if line.strip()]
    return False, f"the export stopped (exit code {code})" + (f": {tail[-1]}" if tail else "")
