"""The live channel's wire format (docs/protocol.md): length-prefixed JSON frames.

A frame is a 4-byte big-endian unsigned length N followed by N bytes of UTF-8 JSON that
decode to an object with a string `type`. Frames longer than the limit are refused before
their body is read, so a peer cannot make the other side allocate a gigabyte.

Stdlib only: the engine's server, the terminal client and the window all use this module.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

PROTOCOL_VERSION = 1
MAX_FRAME = 1 << 20  # bytes of one frame's body
HEADER = struct.Struct(">I")
HANDSHAKE_TIMEOUT_S = 5.0

# What a client may send, and the fields each needs (name → type).
CLIENT_MESSAGES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hello": {"version": int, "token": str},
    "subscribe": {"after": int},
    "control": {"command": str},
    "ping": {},
}
CONTROL_COMMANDS = ("pause", "resume", "stop", "checkpoint")

# What the server sends (documented in docs/protocol.md; clients ignore unknown types).
SERVER_MESSAGES = (
    "welcome",
    "metrics",
    "event",
    "stage",
    "progress",
    "status",
    "gpu",
    "caught_up",
    "dropped",
    "ack",
    "pong",
    "error",
    "bye",
)


class FrameError(ValueError):
    """A frame that breaks the protocol; the connection that sent it is closed."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def encode_frame(message: dict[str, Any], *, max_frame: int = MAX_FRAME) -> bytes:
    """One frame for `message` (an object with a string `type`).

    Raises:
        FrameError: if the message is not such an object or its body exceeds `max_frame`.
    """
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("bad_message", "a message must be an object with a string 'type'")
    try:
        body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:  # NaN or ±inf somewhere: JSON has no such numbers
        body = json.dumps(json_safe(message), separators=(",", ":"), allow_nan=False).encode()
    if len(body) > max_frame:
        raise FrameError("too_large", f"frame of {len(body)} bytes exceeds {max_frame}")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Turns a byte stream, in chunks of any size, back into messages.

    Raises `FrameError` (and only that) for anything that is not a valid frame; after an
    error the decoder is spent and the connection should be closed.
    """

    def __init__(self, *, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._need: int | None = None  # body length of the frame being read

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame (a truncated frame at EOF)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add received bytes; returns the messages they complete, in order."""
        self._buffer += data
        out: list[dict[str, Any]] = []
        while True:
            if self._need is None:
                if len(self._buffer) < HEADER.size:
                    return out
                (length,) = HEADER.unpack_from(self._buffer)
                if length > self.max_frame:
                    raise FrameError(
                        "too_large",
                        f"frame of {length} bytes exceeds the limit of {self.max_frame}",
                    )
                del self._buffer[: HEADER.size]
                self._need = length
            if len(self._buffer) < self._need:
                return out
            body = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            self._need = None
            out.append(decode_body(body))


# How NaN and ±inf travel (JSON has no such numbers): as these strings. A metric point's
# value is turned back into a float by `decode_body`; elsewhere (event data) they stay text.
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def json_safe(value: Any) -> Any:
    """`value` with NaN and ±inf floats as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _metric_values(message: dict[str, Any]) -> None:
    for point in message.get("points") or ():
        if isinstance(point, list) and len(point) > 4 and isinstance(point[4], str):
            point[4] = NONFINITE.get(point[4], point[4])


def decode_body(body: bytes) -> dict[str, Any]:
    """The message in one frame body.

    Raises:
        FrameError: if the body is not UTF-8 JSON of an object with a string `type`.
    """
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FrameError(
            "bad_json", f"frame is not UTF-8 JSON ({exc.__class__.__name__})"
        ) from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("bad_message", "a message must be an object with a string 'type'")
    if message["type"] == "metrics":
        _metric_values(message)
    return message


def check_client_message(message: dict[str, Any]) -> None:
    """Raise `FrameError` unless `message` is a well-formed client message."""
    kind = message["type"]
    fields = CLIENT_MESSAGES.get(kind)
    if fields is None:
        raise FrameError("unknown_type", f"unknown message type {kind[:40]!r}")
    for name, want in fields.items():
        value = message.get(name)
        if not isinstance(value, want) or isinstance(value, bool):
            raise FrameError("bad_message", f"'{kind}' needs '{name}' of type {want.__name__}")
    if kind == "control" and message["command"] not in CONTROL_COMMANDS:
        raise FrameError("bad_command", f"unknown command; one of {', '.join(CONTROL_COMMANDS)}")
