"""Channel messages made from the recorder's records and from stored history."""

from __future__ import annotations

from typing import Any

# An `event` message's fields, in the order of the ("event", …) items of the history.
EVENT_FIELDS = ("seq", "stage", "kind", "level", "message", "data", "wall_ms")


def event_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The `event` message fields of a recorded event."""
    return {
        "seq": event["seq"],
        "stage": event.get("stage_idx"),
        "kind": event["kind"],
        "level": event.get("level", "info"),
        "message": event["message"],
        "data": event.get("data"),
        "wall_ms": event["wall_ms"],
    }


def history_frames(items: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Stored or buffered items (see `queries.stream_after`) as messages, in order."""
    frames: list[dict[str, Any]] = []
    points: list[list[Any]] = []
    for item in items:
        if item[0] == "point":
            _, seq, stage, key, step, value, wall = item
            points.append([seq, stage, key, step, value, wall])
            continue
        if points:
            frames.append({"type": "metrics", "points": points})
            points = []
        frames.append({"type": "event", **dict(zip(EVENT_FIELDS, item[1:], strict=True))})
    if points:
        frames.append({"type": "metrics", "points": points})
    return [f for frame in frames for f in split_frame(frame)]


def split_frame(frame: dict[str, Any], per_frame: int = 4000) -> list[dict[str, Any]]:
    """Metric frames of at most `per_frame` points (~300 kB), far below the frame limit."""
    if frame["type"] != "metrics" or len(frame["points"]) <= per_frame:
        return [frame]
    pts = frame["points"]
    return [
        {"type": "metrics", "points": pts[i : i + per_frame]} for i in range(0, len(pts), per_frame)
    ]


def records_to_frames(
    batch: list[tuple[str, dict[str, Any]]], progress: Any
) -> list[dict[str, Any]]:
    """Records → frames; metric points of one batch go out together (coalescing). The
    progress tracker follows the steps and stage changes it sees."""
    frames: list[dict[str, Any]] = []
    points: list[list[Any]] = []
    for kind, payload in batch:
        if kind == "metrics":
            for stage, key, step, value, wall, seq in payload["points"]:
                points.append([seq, stage, key, step, value, wall])
                progress.step(stage, step)
            continue
        if points:
            frames.append({"type": "metrics", "points": points})
            points = []
        if kind == "event":
            frames.append({"type": "event", **event_fields(payload)})
        elif kind == "stage":
            progress.stage(payload)
            frames.append({"type": "stage", **payload})
        elif kind == "status":
            frames.append({"type": "status", **payload})
    if points:
        frames.append({"type": "metrics", "points": points})
    return [f for frame in frames for f in split_frame(frame)]


def apply_command(control: Any, command: str) -> str:
    """Hand a client's control command to the training loop; the sentence for its ack."""
    if command == "pause":
        control.pause()
        return "paused after the current step"
    if command == "resume":
        control.resume()
        return "training continues"
    if command == "stop":
        control.stop()
        return "stopping: a checkpoint is written after the current step"
    control.checkpoint_requested = True
    return "a checkpoint is written after the current step"
