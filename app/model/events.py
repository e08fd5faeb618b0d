"""A minimal Qt-free event emitter, so view models can be observed without knowing Qt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """Callbacks called in order with the arguments of `emit`."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        """Call `callback` on every emit."""
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling `callback`."""
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call every connected callback."""
        for callback in list(self._callbacks):
            callback(*args)
