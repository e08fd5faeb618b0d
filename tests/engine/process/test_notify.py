"""The notify hook's rules without an engine (the real engine runs it in
tests/engine/queue/test_queue_runs.py): a run shorter than min_seconds notifies nothing,
what it held is sent once it lasted long enough, a failing command is a warning event,
a broken settings file is the defaults and one sentence."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from engine.process.notify import Notifier, attach_notifier, is_loss
from engine.store.settings import NotifySettings, notify_settings


class Events:
    """What the notifier records (the recorder's `event` and `listeners`)."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str, str]] = []
        self.listeners: list[Any] = []

    def event(self, kind: str, message: str, *, level: str = "info", **_: Any) -> None:
        self.said.append((kind, level, message))


def hook(tmp_path: Path) -> str:
    return f'echo "$STAGELAB_EVENT $STAGELAB_STATUS" >> {tmp_path / "calls"}'


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def nan_point(step: int) -> dict:
    return {"points": [(0, "train/loss", step, math.nan, 0, step)]}


def test_losses():
    assert is_loss("train/loss") and is_loss("eval/loss") and is_loss("train/kd_loss")
    assert not is_loss("eval/accuracy") and not is_loss("train/grad_norm")


def test_a_short_run_notifies_nothing(tmp_path):
    notifier = Notifier(NotifySettings(hook(tmp_path), min_seconds=3600), "r1", Events())
    notifier("metrics", nan_point(3))
    notifier.ended("finished")
    assert calls(tmp_path) == []


def test_held_events_go_once_the_run_lasted_long_enough(tmp_path):
    notifier = Notifier(NotifySettings(hook(tmp_path), min_seconds=3600), "r1", Events())
    notifier("metrics", nan_point(3))
    notifier("metrics", nan_point(4))  # once a run
    notifier("event", {"kind": "early_stop", "message": "early stopping at step 9"})
    notifier.t0 -= 3600  # an hour later
    notifier.ended("finished")
    assert calls(tmp_path) == ["nan running", "early_stop running", "finished finished"]


def test_a_stopped_run_notifies_nothing_and_a_failing_command_is_a_warning(tmp_path):
    events = Events()
    notifier = Notifier(NotifySettings("echo oops >&2; exit 3", min_seconds=0), "r1", events)
    notifier.ended("stopped")
    assert events.said == []
    notifier.ended("failed", "ValueError: bad")
    [(kind, level, message)] = events.said
    assert (kind, level) == ("notify", "warning")
    assert message.startswith("the notify command for 'failed' exited 3: oops")


def test_settings_file(tmp_path):
    assert notify_settings(tmp_path) == NotifySettings()
    (tmp_path / "settings.yaml").write_text("notify: {command: 'true', min_seconds: 5}\n")
    assert notify_settings(tmp_path) == NotifySettings("true", 5.0)
    (tmp_path / "settings.yaml").write_text("notify: [1, 2]\n")
    events = Events()
    notifier = attach_notifier(tmp_path, "r1", events)
    assert notifier.settings.command is None and events.listeners == [notifier]
    [(kind, level, message)] = events.said
    assert level == "warning" and "settings.yaml was not used ('notify' must be" in message


def test_a_nan_is_notified_while_the_run_goes_on(tmp_path):
    import time

    notifier = Notifier(NotifySettings(hook(tmp_path), min_seconds=0), "r1", Events())
    notifier("metrics", nan_point(3))
    deadline = time.monotonic() + 60
    while not calls(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)  # the hook's own thread runs it, before the run ends
    assert calls(tmp_path) == ["nan running"]
    notifier.ended("finished")
    assert calls(tmp_path) == ["nan running", "finished finished"]


def test_the_desktops_settings_travel_in_the_environment(tmp_path, monkeypatch):
    from engine.store.settings import NOTIFY_ENV, notify_env

    assert notify_env(tmp_path) == {}  # no command: nothing travels
    (tmp_path / "settings.yaml").write_text("notify: {command: 'echo hi', min_seconds: 5}\n")
    carried = notify_env(tmp_path)
    there = tmp_path / "there"
    there.mkdir()
    monkeypatch.setenv(NOTIFY_ENV, carried[NOTIFY_ENV])
    assert notify_settings(there) == NotifySettings("echo hi", 5.0)
