"""The frame codec: round trips under any chunking, and nothing but FrameError for junk."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.channel.protocol import (
    MAX_FRAME,
    FrameDecoder,
    FrameError,
    check_client_message,
    encode_frame,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
messages = st.builds(
    lambda kind, body: {**body, "type": kind},
    st.text(min_size=1, max_size=12),
    st.dictionaries(st.text(max_size=8), json_values, max_size=5),
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


@settings(max_examples=300, deadline=None)
@given(st.lists(messages, min_size=1, max_size=6), st.lists(st.integers(0, 10**6), max_size=12))
def test_messages_survive_any_chunking(batch, cuts):
    stream = b"".join(encode_frame(m) for m in batch)
    decoder = FrameDecoder()
    out = [m for chunk in chunked(stream, cuts) for m in decoder.feed(chunk)]
    assert out == batch
    assert decoder.pending == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_junk_bytes_raise_only_frame_errors(junk, cuts):
    decoder = FrameDecoder(max_frame=256)
    try:
        for chunk in chunked(junk, cuts):
            for message in decoder.feed(chunk):
                assert isinstance(message, dict) and isinstance(message["type"], str)
    except FrameError as exc:
        assert exc.code in ("too_large", "bad_json", "bad_message")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_junk_framed_correctly_is_still_refused_unless_it_is_a_message(body):
    decoder = FrameDecoder()
    try:
        out = decoder.feed(struct.pack(">I", len(body)) + body)
    except FrameError:
        return
    assert isinstance(out[0], dict) and isinstance(out[0]["type"], str)


def test_a_huge_length_prefix_is_refused_before_any_body_arrives():
    decoder = FrameDecoder()
    with pytest.raises(FrameError) as info:
        decoder.feed(struct.pack(">I", 1 << 30))
    assert info.value.code == "too_large"


def test_encoder_refuses_oversized_and_untyped_messages():
    with pytest.raises(FrameError):
        encode_frame({"type": "x", "blob": "a" * (MAX_FRAME + 1)})
    with pytest.raises(FrameError):
        encode_frame({"no": "type"})


@pytest.mark.parametrize(
    "message, code",
    [
        ({"type": "hello", "version": "1", "token": "t"}, "bad_message"),
        ({"type": "hello", "version": True, "token": "t"}, "bad_message"),
        ({"type": "subscribe"}, "bad_message"),
        ({"type": "control", "command": "explode"}, "bad_command"),
        ({"type": "launch"}, "unknown_type"),
    ],
)
def test_client_messages_are_checked(message, code):
    with pytest.raises(FrameError) as info:
        check_client_message(message)
    assert info.value.code == code


def test_good_client_messages_pass():
    for message in (
        {"type": "hello", "version": 1, "token": "t"},
        {"type": "subscribe", "after": 0},
        {"type": "control", "command": "stop"},
        {"type": "ping"},
    ):
        check_client_message(message)
