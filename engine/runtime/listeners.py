"""The recorder's live listeners: who hears each record as it is made (the live channel's
`publish`), and what happens when one of them raises."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]


class Listeners(list):
    """A list of listeners `(kind, payload)`, called in order for every record.

    A listener that raises never stops training: the failure is said once per listener
    (standard error and a `channel` warning event through `report`), and the listener
    stays registered, since the next record may go through. The record itself is complete;
    only the live view may miss what the listener dropped.
    """

    def __init__(self, report: Callable[..., None]):
        super().__init__()
        self._report = report
        self._failed: set[int] = set()  # ids of listeners whose failure was said

    def notify(self, kind: str, payload: dict[str, Any]) -> None:
        """Hand a record to every listener."""
        failed = []
        for listener in self:
            try:
                listener(kind, payload)
            except Exception as exc:  # noqa: BLE001 - a broken live listener must not stop training
                failed.append((listener, exc))
        for listener, exc in failed:  # after: every listener hears records in `seq` order
            self._said_failed(listener, exc)

    def _said_failed(self, listener: Listener, exc: Exception) -> None:
        if id(listener) in self._failed:
            return  # said already; a listener failing on every step would flood the log
        self._failed.add(id(listener))  # first: the event below reaches it too
        name = getattr(listener, "__qualname__", None) or type(listener).__name__
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        print(f"stagelab engine: live listener {name} failed: {reason}", file=sys.stderr)
        self._report(
            "channel",
            f"live listener {name} failed ({reason}); the record is complete, live clients "
            "may miss updates (later failures of it are not reported)",
            level="warning",
            data={"listener": name, "error": reason},
        )
