"""Channel messages are typed at the client (issue 28): every kind the window and `stagelab
watch` read arrives as its dataclass; a malformed one from the engine is dropped and counted
at the boundary, never passed on; the wire is unchanged."""

from __future__ import annotations

import math
import socket

import pytest

from engine.channel.client import ChannelClient
from engine.channel.messages import (
    Ack,
    Bye,
    CaughtUp,
    Dropped,
    ErrorReport,
    Event,
    Gpu,
    MalformedMessage,
    Metrics,
    Pong,
    Progress,
    StageUpdate,
    Status,
    Welcome,
    parse_message,
)
from engine.channel.protocol import SERVER_MESSAGES, encode_frame
from engine.store.status import RunStatus, StageStatus

STAGE = {"idx": 0, "name": "mlm", "kind": "pretrain", "status": "running", "total_steps": 30}
GOOD = {
    "welcome": {"type": "welcome", "version": 1, "run_id": "r", "engine_id": "e", "pid": 7,
                "first_seq": 1, "last_seq": 9, "status": "running", "stages": [STAGE],
                "max_frame": 1 << 20},
    "metrics": {"type": "metrics", "points": [[1, 0, "train/loss", 1, 2.5, 100],
                                              [2, 0, "train/loss", 2, "NaN", 101]]},
    "event": {"type": "event", "seq": 3, "stage": 0, "kind": "eval", "level": "info",
              "message": "evaluated", "data": {"metrics": {"loss": 1.0}}, "wall_ms": 5},
    "stage": {"type": "stage", "idx": 1, "status": "reused", "steps_done": 12,
              "reused_run_id": "abc", "reused_stage_idx": 0},
    "progress": {"type": "progress", "stage": 0, "step": 5, "total": 30, "steps_per_s": 2.0,
                 "eta_s": 12.5, "overall_step": 5, "overall_total": None,
                 "overall_eta_s": None},
    "status": {"type": "status", "status": "paused"},
    "gpu": {"type": "gpu", "gpus": [{"index": 0, "name": "H100", "memory_used": 2**30,
                                     "memory_total": 80 * 2**30, "utilization": 93}]},
    "caught_up": {"type": "caught_up", "seq": 9},
    "dropped": {"type": "dropped", "count": 40, "after": 9},
    "ack": {"type": "ack", "id": 1, "command": "pause", "ok": True, "message": "paused"},
    "pong": {"type": "pong", "id": 2, "wall_ms": 17},
    "error": {"type": "error", "code": "bad_token", "message": "wrong token"},
    "bye": {"type": "bye", "status": "finished"},
}  # fmt: skip

# One way each kind can break the protocol (a field missing, mistyped or out of range).
BAD = {
    "welcome": {**GOOD["welcome"], "engine_id": None},
    "metrics": {"type": "metrics", "points": [[1, 0, "train/loss", "one", 2.5, 100]]},
    "event": {**GOOD["event"], "seq": "3"},
    "stage": {**GOOD["stage"], "idx": "1"},
    "progress": {**GOOD["progress"], "step": 5.5},
    "status": {"type": "status", "status": "sleeping"},
    "gpu": {"type": "gpu", "gpus": {"index": 0}},
    "caught_up": {"type": "caught_up"},
    "dropped": {"type": "dropped", "count": "many", "after": 9},
    "ack": {**GOOD["ack"], "ok": "yes"},
    "pong": {**GOOD["pong"], "wall_ms": "now"},
    "error": {"type": "error", "message": "no code"},
    "bye": {"type": "bye", "status": True},
}
TYPES = {
    "welcome": Welcome, "metrics": Metrics, "event": Event, "stage": StageUpdate,
    "progress": Progress, "status": Status, "gpu": Gpu, "caught_up": CaughtUp,
    "dropped": Dropped, "ack": Ack, "pong": Pong, "error": ErrorReport, "bye": Bye,
}  # fmt: skip


def test_every_server_message_kind_has_a_type_and_a_malformed_example():
    assert set(GOOD) == set(BAD) == set(TYPES) == set(SERVER_MESSAGES)


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_a_well_formed_message_arrives_typed(kind):
    message = parse_message(GOOD[kind])
    assert isinstance(message, TYPES[kind]) and message.type == kind


def test_typed_fields_read_as_the_wire_said():
    welcome = parse_message(GOOD["welcome"])
    assert welcome.status is RunStatus.RUNNING and welcome.stages[0].status is StageStatus.RUNNING
    assert welcome.stages[0].total_steps == 30 and welcome.stages[0].steps_done is None
    points = parse_message(GOOD["metrics"]).points
    assert points[0].step == 1 and points[0].value == 2.5 and math.isnan(points[1].value)
    stage = parse_message(GOOD["stage"])
    assert stage.status is StageStatus.REUSED and stage.total_steps is None
    event = parse_message(GOOD["event"])
    assert event.record() == {k: v for k, v in GOOD["event"].items()}
    assert parse_message(GOOD["gpu"]).gpus[0].utilization == 93.0
    assert parse_message({"type": "a_later_kind", "x": 1}) is None  # ignored, as documented


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_malformed_message_of_each_kind_is_refused(kind):
    with pytest.raises(MalformedMessage):
        parse_message(BAD[kind])


def test_the_client_drops_and_counts_malformed_messages_and_passes_the_rest_typed():
    engine, mine = socket.socketpair()
    client = ChannelClient({})
    client.sock = mine
    try:
        for kind in sorted(TYPES):
            engine.sendall(encode_frame(BAD[kind]) + encode_frame(GOOD[kind]))
        engine.sendall(encode_frame({"type": "a_later_kind"}))
        got = []
        while (message := client.receive(0.5)) is not None:
            got.append(message)
        assert [type(m) for m in got] == [TYPES[kind] for kind in sorted(TYPES)]
        assert client.malformed == len(BAD)
        assert client.last_malformed == "'welcome' needs 'engine_id'"  # the latest dropped
    finally:
        engine.close()
        client.close()


def test_control_skips_a_malformed_ack_and_keeps_other_messages_for_receive():
    engine, mine = socket.socketpair()
    client = ChannelClient({})
    client.sock = mine
    try:
        engine.sendall(
            encode_frame(GOOD["status"])
            + encode_frame({**GOOD["ack"], "ok": "yes"})
            + encode_frame(GOOD["ack"])
        )
        ack = client.control("pause", timeout=2)
        assert isinstance(ack, Ack) and ack.ok and ack.message == "paused"
        assert client.malformed == 1
        assert client.receive(0.5) == Status(status=RunStatus.PAUSED)
    finally:
        engine.close()
        client.close()
