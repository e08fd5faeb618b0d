"""The engine's channel messages as types (docs/protocol.md): what a client reads.

`parse_message` turns a decoded frame (a dict, `protocol.decode_body`) into one of the
frozen dataclasses below, checking every field it names, so a consumer reads
`message.status` (a `RunStatus`), never `message["status"]`. A message that breaks the
protocol raises `MalformedMessage`; a type this version does not know gives None (the
protocol says to ignore it). The wire is unchanged: the server still sends dicts.

Stdlib only, like the rest of the client side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from engine.channel.protocol import NONFINITE
from engine.store.status import RunStatus, StageStatus


class MalformedMessage(ValueError):
    """A message from the engine that breaks the protocol: the client drops it."""


# -- field checks -----------------------------------------------------------------------

Want = type | tuple[type, ...]
INT, NUMBER, STR, DICT = int, (int, float), str, dict


def _field(kind: str, raw: Mapping[str, Any], name: str, want: Want, *, optional=False) -> Any:
    """`raw[name]`, of the type `want` (never a bool: JSON's true is not a number); an
    optional field may be missing or null (None)."""
    value = raw.get(name)
    if value is None:
        if optional:
            return None
        raise MalformedMessage(f"'{kind}' needs '{name}'")
    if not isinstance(value, want) or isinstance(value, bool):
        raise MalformedMessage(f"'{kind}': '{name}' is {type(value).__name__} {value!r:.40}")
    return value


def _enum(kind: str, enum: type, value: Any, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    try:
        return enum(value)
    except ValueError:
        raise MalformedMessage(f"'{kind}': {value!r:.40} is not a {enum.__name__}") from None


# -- the messages -----------------------------------------------------------------------


class Point(NamedTuple):
    """One metric point of a `metrics` message (a tuple: `point[3]` is its step)."""

    seq: int
    stage: int
    key: str
    step: int
    value: float
    wall_ms: int


@dataclass(frozen=True)
class Welcome:
    type: ClassVar[str] = "welcome"
    version: int
    run_id: str
    engine_id: str
    first_seq: int
    last_seq: int
    status: RunStatus
    stages: tuple[StageUpdate, ...] = ()  # every stage, with the fields it has
    pid: int | None = None
    max_frame: int | None = None


@dataclass(frozen=True)
class Metrics:
    type: ClassVar[str] = "metrics"
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"
    seq: int
    stage: int | None
    kind: str
    level: str
    message: str
    data: dict[str, Any] | None
    wall_ms: int

    def record(self) -> dict[str, Any]:
        """The event as the store's history gives it (`read_events`): the monitor keeps
        stored and live events in one list."""
        return {
            "type": "event",
            "seq": self.seq,
            "stage": self.stage,
            "kind": self.kind,
            "level": self.level,
            "message": self.message,
            "data": self.data,
            "wall_ms": self.wall_ms,
        }


@dataclass(frozen=True)
class StageUpdate:
    """A stage row changed: `idx` and the changed fields (None: not in the message)."""

    type: ClassVar[str] = "stage"
    idx: int
    name: str | None = None
    kind: str | None = None
    status: StageStatus | None = None
    total_steps: int | None = None
    steps_done: int | None = None
    global_step_start: int | None = None
    started_ms: int | None = None
    ended_ms: int | None = None
    output_dir: str | None = None
    final_metrics: Any = None
    reused_run_id: str | None = None
    reused_stage_idx: int | None = None


@dataclass(frozen=True)
class Progress:
    type: ClassVar[str] = "progress"
    stage: int | None = None
    step: int | None = None
    total: int | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    overall_step: int | None = None
    overall_total: int | None = None
    overall_eta_s: float | None = None


@dataclass(frozen=True)
class Status:
    type: ClassVar[str] = "status"
    status: RunStatus


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str
    memory_used: int
    memory_total: int | None
    utilization: float


@dataclass(frozen=True)
class Gpu:
    type: ClassVar[str] = "gpu"
    gpus: tuple[GpuSample, ...]


@dataclass(frozen=True)
class CaughtUp:
    type: ClassVar[str] = "caught_up"
    seq: int


@dataclass(frozen=True)
class Dropped:
    type: ClassVar[str] = "dropped"
    count: int
    after: int


@dataclass(frozen=True)
class Ack:
    type: ClassVar[str] = "ack"
    command: str
    ok: bool
    message: str = ""
    id: Any = None


@dataclass(frozen=True)
class Pong:
    type: ClassVar[str] = "pong"
    id: Any = None
    wall_ms: int | None = None


@dataclass(frozen=True)
class ErrorReport:
    """The engine refused something and closes the connection; the window's adapter also
    reports its own failures this way (code `client`)."""

    type: ClassVar[str] = "error"
    code: str
    message: str


@dataclass(frozen=True)
class Bye:
    type: ClassVar[str] = "bye"
    status: RunStatus


@dataclass(frozen=True)
class Idle:
    """Not on the wire: `RunFollower.messages` yields it when nothing came for a while."""

    type: ClassVar[str] = "idle"


ServerMessage = (
    Welcome
    | Metrics
    | Event
    | StageUpdate
    | Progress
    | Status
    | Gpu
    | CaughtUp
    | Dropped
    | Ack
    | Pong
    | ErrorReport
    | Bye
)


# -- parsing ----------------------------------------------------------------------------


def _point(raw: Any) -> Point:
    if not isinstance(raw, list | tuple) or len(raw) != 6:
        raise MalformedMessage("'metrics': a point is [seq, stage, key, step, value, wall_ms]")
    seq, stage, key, step, value, wall_ms = raw
    value = NONFINITE.get(value, value) if isinstance(value, str) else value
    ints = (seq, stage, step, wall_ms)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in ints) or not (
        isinstance(key, str) and isinstance(value, int | float) and not isinstance(value, bool)
    ):
        raise MalformedMessage(f"'metrics': bad point {raw!r:.60}")
    return Point(seq, stage, key, step, float(value), wall_ms)


def _list(kind: str, raw: Mapping[str, Any], name: str, item: Callable[[Any], Any]) -> tuple:
    value = raw.get(name, [])
    if not isinstance(value, list):
        raise MalformedMessage(f"'{kind}': '{name}' is not a list")
    return tuple(item(v) for v in value)


def _welcome(raw: Mapping[str, Any]) -> Welcome:
    k = "welcome"
    return Welcome(
        version=_field(k, raw, "version", INT),
        run_id=_field(k, raw, "run_id", STR),
        engine_id=_field(k, raw, "engine_id", STR),
        first_seq=_field(k, raw, "first_seq", INT),
        last_seq=_field(k, raw, "last_seq", INT),
        status=_enum(k, RunStatus, raw.get("status")),
        stages=_list(k, raw, "stages", _stage),
        pid=_field(k, raw, "pid", INT, optional=True),
        max_frame=_field(k, raw, "max_frame", INT, optional=True),
    )


def _metrics(raw: Mapping[str, Any]) -> Metrics:
    if not isinstance(raw.get("points"), list):
        raise MalformedMessage("'metrics' needs a list 'points'")
    return Metrics(points=tuple(_point(p) for p in raw["points"]))


def _event(raw: Mapping[str, Any]) -> Event:
    k = "event"
    return Event(
        seq=_field(k, raw, "seq", INT),
        stage=_field(k, raw, "stage", INT, optional=True),
        kind=_field(k, raw, "kind", STR),
        level=_field(k, raw, "level", STR, optional=True) or "info",
        message=_field(k, raw, "message", STR),
        data=_field(k, raw, "data", DICT, optional=True),
        wall_ms=_field(k, raw, "wall_ms", INT),
    )


def _stage(raw: Any) -> StageUpdate:
    if not isinstance(raw, dict):
        raise MalformedMessage("a stage is an object")
    k = "stage"
    ints = ("total_steps", "steps_done", "global_step_start", "started_ms", "ended_ms")
    strs = ("name", "kind", "output_dir", "reused_run_id")
    return StageUpdate(
        idx=_field(k, raw, "idx", INT),
        status=_enum(k, StageStatus, raw.get("status"), optional=True),
        final_metrics=raw.get("final_metrics"),
        reused_stage_idx=_field(k, raw, "reused_stage_idx", INT, optional=True),
        **{name: _field(k, raw, name, INT, optional=True) for name in ints},
        **{name: _field(k, raw, name, STR, optional=True) for name in strs},
    )


def _progress(raw: Mapping[str, Any]) -> Progress:
    k = "progress"
    ints = ("stage", "step", "total", "overall_step", "overall_total")
    rates = ("steps_per_s", "eta_s", "overall_eta_s")
    values = {name: _field(k, raw, name, INT, optional=True) for name in ints}
    for name in rates:
        value = _field(k, raw, name, NUMBER, optional=True)
        values[name] = None if value is None or not math.isfinite(value) else float(value)
    return Progress(**values)


def _gpu_sample(raw: Any) -> GpuSample:
    if not isinstance(raw, dict):
        raise MalformedMessage("'gpu': a sample is an object")
    k = "gpu"
    index = _field(k, raw, "index", INT)
    return GpuSample(
        index=index,
        name=_field(k, raw, "name", STR, optional=True) or f"GPU {index}",
        memory_used=_field(k, raw, "memory_used", INT),
        memory_total=_field(k, raw, "memory_total", INT, optional=True),
        utilization=float(_field(k, raw, "utilization", NUMBER)),
    )


def _ack(raw: Mapping[str, Any]) -> Ack:
    ok = raw.get("ok")
    if not isinstance(ok, bool):
        raise MalformedMessage("'ack' needs a true/false 'ok'")
    return Ack(
        command=_field("ack", raw, "command", STR),
        ok=ok,
        message=_field("ack", raw, "message", STR, optional=True) or "",
        id=raw.get("id"),
    )


PARSERS: dict[str, Callable[[Mapping[str, Any]], ServerMessage]] = {
    "welcome": _welcome,
    "metrics": _metrics,
    "event": _event,
    "stage": _stage,
    "progress": _progress,
    "status": lambda raw: Status(status=_enum("status", RunStatus, raw.get("status"))),
    "gpu": lambda raw: Gpu(gpus=_list("gpu", raw, "gpus", _gpu_sample)),
    "caught_up": lambda raw: CaughtUp(seq=_field("caught_up", raw, "seq", INT)),
    "dropped": lambda raw: Dropped(
        count=_field("dropped", raw, "count", INT), after=_field("dropped", raw, "after", INT)
    ),
    "ack": _ack,
    "pong": lambda raw: Pong(
        id=raw.get("id"), wall_ms=_field("pong", raw, "wall_ms", INT, optional=True)
    ),
    "error": lambda raw: ErrorReport(
        code=_field("error", raw, "code", STR), message=_field("error", raw, "message", STR)
    ),
    "bye": lambda raw: Bye(status=_enum("bye", RunStatus, raw.get("status"))),
}


def parse_message(raw: Mapping[str, Any]) -> ServerMessage | None:
    """The typed message of one decoded frame from the engine; None for a type this client
    does not know (ignored, as the protocol says).

    Raises:
        MalformedMessage: a known type with a missing or mistyped field.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise MalformedMessage("a message must be an object with a string 'type'")
    parse = PARSERS.get(raw["type"])
    return None if parse is None else parse(raw)
