"""The inspector's line about a stage's size and memory: '1.4 M params (0.2 M trainable)
· ≈ 0.3 GB', its parts in the tooltip, and a warning when the chosen GPU has less free
memory than the estimate (app/model/memory_estimate.py, docs/memory.md)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLabel

from app.qt.qt_look import PROBLEM_COLOR


class QtMemoryLine(QLabel):
    """Parameters and estimated memory of the selected stage."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("memoryEstimate")
        self.setAccessibleName("Memory estimate")
        self.setWordWrap(True)
        self.warning = ""

    def show_stage(
        self, stages: list[Any], index: int, plan_dir: Path, free_bytes: float | None, device: str
    ) -> None:
        """Estimate stage `index`; warn if it exceeds `free_bytes` of `device` (None: CPU)."""
        # Imported here: the first line is drawn after the window's first paint.
        from app.model.size_line import SizeLine, size_line

        try:
            line = size_line(stages, index, plan_dir)
        except (TypeError, ValueError, ArithmeticError):  # a half-typed plan: no line yet
            line = SizeLine("")
        guess = line.estimate
        if guess is None:
            # An ensemble's members, a size not known yet: words, not an estimate.
            self.warning = ""
            self.setText(f"<small>{escape(line.text, quote=False)}</small>")
            self.setToolTip(line.tooltip)
            return
        self.warning = guess.warning(free_bytes, device)
        text = f"<b>{escape(line.text, quote=False)}</b>"
        if self.warning:
            text += f"<br><span style='color: {PROBLEM_COLOR.name()}'>⚠ {self.warning}</span>"
        self.setText(text)
        where = f"; {device} has {free_bytes / 2**30:.1f} GB free" if free_bytes else ""
        self.setToolTip(
            "Estimated GPU memory for training (docs/memory.md)" + where + ":\n" + line.tooltip
        )
