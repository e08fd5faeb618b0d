"""The window's channel adapter against a real engine-side server: messages arrive as
signals on the GUI thread, every point once and in order; commands reach the loop."""

from __future__ import annotations

from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from app.qt.monitor.qt_run_channel import QtRunChannel, points_of
from tests.engine.channel.live import Live


def test_messages_arrive_on_the_gui_thread_and_commands_reach_the_engine(qtbot, tmp_path):
    live = Live(tmp_path / "ws")
    channel = QtRunChannel(live.run_dir)
    steps: list[int] = []
    threads: set[bool] = set()

    def on_message(message) -> None:
        threads.add(QThread.currentThread() is QApplication.instance().thread())
        steps.extend(step for _, step, _ in points_of(message, "train/loss"))

    channel.message.connect(on_message)
    try:
        live.train(50)  # before the window attaches: comes as history
        channel.follow(after=0)
        qtbot.waitUntil(lambda: len(steps) >= 50, timeout=10_000)
        live.train(50)  # while attached: comes live
        qtbot.waitUntil(lambda: len(steps) >= 100, timeout=10_000)
        assert steps == list(range(1, 101))
        assert threads == {True}

        with qtbot.waitSignal(channel.commandDone, timeout=10_000) as done:
            channel.send("pause")
        assert done.args[:2] == ["pause", True] and live.control.paused
        with qtbot.waitSignal(channel.ended, timeout=10_000) as ended:
            live.close()
        assert ended.args == ["finished"]
    finally:
        channel.close()


def test_a_malformed_message_is_dropped_and_said_once_in_the_log(qtbot, tmp_path, monkeypatch):
    """Metric frames the client cannot parse never reach the monitor; the log says so once."""
    import engine.channel.client as client_module
    from app.qt.monitor.qt_live_follow import QtLiveFollow
    from engine.channel.messages import MalformedMessage, Metrics, parse_message

    def broken_metrics(raw):
        if raw.get("type") == "metrics":
            raise MalformedMessage("'metrics': bad point")
        return parse_message(raw)

    monkeypatch.setattr(client_module, "parse_message", broken_metrics)
    live = Live(tmp_path / "ws")
    got, said = [], []
    follow = QtLiveFollow(lambda: live.store, got.append)
    follow.commandFailed.connect(said.append)
    try:
        live.train(20)
        follow.follow(live.run_dir, after=0)
        qtbot.waitUntil(lambda: any(m.type == "caught_up" for m in got), timeout=10_000)
        live.train(20)
        qtbot.waitUntil(lambda: follow.channel._follower.malformed >= 2, timeout=10_000)
        assert not any(isinstance(m, Metrics) for m in got)
        assert len(said) == 1 and said[0].startswith("channel: dropped a malformed message")
    finally:
        follow.stop()
        live.close()
