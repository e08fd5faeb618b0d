"""The window's queue (Run → Add to queue, the Queue panel's Remove and Start queue: a
real runner process) and its notification when a watched run ends (captured; a toast where
there is no tray, as offscreen)."""

from __future__ import annotations

import math
import os

from PySide6.QtCore import Qt

from app.model.plan_document import PlanDocument
from engine.store import queries
from engine.store.queue import list_queue

PLAN = """name: queued
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 16}
    batch_size: 8
    max_steps: 2
"""


def test_add_to_queue_remove_and_start_queue(window, qtbot, tmp_path):
    (tmp_path / "corpus.txt").write_text("a few words of text\n" * 40)
    plan = tmp_path / "queued.yaml"
    plan.write_text(PLAN)
    window.set_document(PlanDocument.from_file(plan))
    actions = window.queue_actions
    actions.add_action.trigger()
    actions.add_action.trigger()
    panel = actions.panel
    assert actions.dock.isVisible()
    assert [(i.id, i.status, i.plan_path, i.gpus) for i in panel.items] == [
        (1, "waiting", str(plan), "cpu"),
        (2, "waiting", str(plan), "cpu"),
    ]
    assert panel.table.item(0, 2).text() == "queued.yaml"
    assert panel.runner_label.text() == "Queue stopped · 2 waiting"
    assert not panel.remove_button.isEnabled()  # nothing selected
    panel.table.selectRow(1)
    assert panel.remove_button.isEnabled()
    panel.remove_button.click()
    assert [i.id for i in panel.items] == [1]
    for size in ((1400, 880), (1024, 640)):
        window.resize(*size)
        qtbot.wait(50)
        window.grab().save(str(tmp_path / f"queue-{size[0]}.png"))
    # The plan file is gone when its turn comes: the runner (a process of its own) marks
    # the item failed with the sentence, and ends.
    plan.unlink()
    assert panel.start_button.isEnabled()
    panel.start_button.click()
    runner = panel.runner_process
    assert runner is not None and os.getsid(runner.pid) == runner.pid  # its own session
    store = window.store()
    qtbot.waitUntil(lambda: list_queue(store)[0].status == "failed", timeout=120_000)
    qtbot.waitUntil(
        lambda: panel.runner_process is None or panel.runner_process.poll() == 0, timeout=60_000
    )
    panel.refresh()
    assert panel.table.item(0, 1).text() == "failed"
    assert "is gone" in panel.table.item(0, 6).text()
    assert panel.runner_label.text() == "Nothing waiting: Run → Add to queue"
    assert not panel.start_button.isEnabled()
    window.tabs.setCurrentIndex(2)  # another tab hides the panel, its refresh stops
    assert not panel.timer.isActive()


def finished_run(window, nan: bool) -> str:
    store = window.store()
    root = window.workspace.root
    exp = queries.create_experiment(store, "watched", "name: watched\nstages: []\n", str(root))
    run = queries.create_run(
        store, exp, plan_text="", plan_dir=str(root), gpus="cpu", runs_dir=window.workspace.runs_dir
    )
    value = math.nan if nan else 0.5
    queries.add_metrics(
        store, run, [(0, "train/loss", 1, 1.0, 1, 1), (0, "train/loss", 2, value, 2, 2)]
    )
    queries.set_run_status(store, run, "finished")
    return run


def test_a_watched_run_that_ends_is_notified(window, qtbot, tmp_path):
    monitor = window.runs.monitor
    notifier = window.runs.notifier
    short = finished_run(window, nan=False)
    monitor.statusChanged.emit(short, "running")
    monitor.statusChanged.emit(short, "finished")
    assert notifier.shown == []  # shorter than a minute: not said
    (window.workspace.root / "settings.yaml").write_text("notify: {min_seconds: 0}\n")
    opened = finished_run(window, nan=False)
    monitor.statusChanged.emit(opened, "finished")  # opened ended: never seen live
    assert notifier.shown == []
    run = finished_run(window, nan=True)
    monitor.statusChanged.emit(run, "running")
    monitor.statusChanged.emit(run, "finished")
    assert notifier.shown == [(f"Run {run} finished", "train/loss went NaN/infinite")]
    assert notifier.toast is not None and notifier.toast.isVisible()
    assert notifier.toast.text().startswith(f"Run {run} finished")
    for size in ((1400, 880), (1024, 640)):
        window.resize(*size)
        notifier.say(*notifier.shown[-1])
        qtbot.wait(50)
        window.grab().save(str(tmp_path / f"notify-{size[0]}.png"))
    (window.workspace.root / "settings.yaml").write_text(
        "notify: {min_seconds: 0, desktop: false}\n"
    )
    qtbot.mouseClick(notifier.toast, Qt.MouseButton.LeftButton)  # a click dismisses it
    assert not notifier.toast.isVisible()
    said = len(notifier.shown)
    off = finished_run(window, nan=False)
    monitor.statusChanged.emit(off, "running")
    monitor.statusChanged.emit(off, "failed")
    assert len(notifier.shown) == said  # desktop: false


def test_double_clicking_an_item_with_a_run_opens_it(window, qtbot):
    from engine.store.queue import add_queue_item, start_queue_item

    run = finished_run(window, nan=False)
    item = add_queue_item(window.store(), "/plans/a.yaml", target=None, gpus="cpu")
    start_queue_item(window.store(), item.id, run)
    window.queue_actions.show_action.trigger()
    panel = window.queue_actions.panel
    assert panel.table.item(0, 4).text() == run
    with qtbot.waitSignal(panel.openRun, timeout=5000) as opened:
        panel.table.cellDoubleClicked.emit(0, 1)
    assert opened.args == [run]
    qtbot.waitUntil(lambda: window.runs.monitor.run is not None, timeout=30_000)
    assert window.runs.monitor.run.run_id == run
