"""PySide6 looks at every module imported after it (for its opt-in `from __feature__
import ...`): it asks whether the module's source mentions "PySide6" through
inspect.getsource, ~0.3 ms a module — ~40 ms of the window's first paint and ~110 ms by
the time the LR preview (pyqtgraph) is drawn. `quicker_source_check` gives it the same
answer from one read of the module's file."""

from __future__ import annotations

import sys

_SLOW = "pyside_check"  # on the quick check: PySide6's own, which it replaced


def quicker_source_check() -> None:
    """Replace PySide6's check with the file read (once; a PySide6 without it is left)."""
    feature = sys.modules.get("shibokensupport.feature")
    slow = getattr(feature, "_mod_uses_pyside", None)
    if slow is None or hasattr(slow, _SLOW):
        return

    def uses_pyside(module) -> bool:
        path = getattr(module, "__file__", None)
        if not (isinstance(path, str) and path.endswith(".py")):
            return slow(module)  # no plain source file: PySide6's own answer
        try:
            with open(path, "rb") as file:  # Python source is ASCII-compatible (PEP 263)
                return b"PySide6" in file.read()
        except OSError:
            return slow(module)

    setattr(uses_pyside, _SLOW, slow)
    feature._mod_uses_pyside = uses_pyside
