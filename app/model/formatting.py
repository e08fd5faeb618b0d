"""Numbers and times as the window writes them (no Qt, so view models can use them)."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """`1 h 02 min`, `3 min 05 s`, `12 s`; an em dash when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
