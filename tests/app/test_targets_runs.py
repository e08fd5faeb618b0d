"""Runs on targets in the window: the monitor says where a run trains, shows `queued` with
Slurm's reason and opens the recorded batch script read-only; Fetch outputs (the browser's
context menu, the monitor's Export menu) brings a remote run's outputs home through a real
OpenSSH server; Run on a target chosen in the Devices dock trains there and the monitor
follows it through the mirror."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel

from app.qt.monitor.qt_remote_parts import QtScriptView
from app.qt.qt_run_actions import EXPERIMENTS_TAB
from engine.remote.mirror_process import mirror_running
from engine.store import queries
from tests.engine.remote.conftest import sshd  # noqa: F401 - the fixture
from tests.engine.remote.test_fetch import remote_run

SCRIPT = "#!/bin/bash\n#SBATCH --job-name=stagelab\n#SBATCH --nodes=1\nsrun torchrun …\n"


def record_run(window, target=None, placement=None) -> str:
    store = window.store()
    exp = queries.create_experiment(store, "remote", "name: remote\n", str(window.workspace.root))
    return queries.create_run(
        store, exp, plan_text="name: remote\n", plan_dir=str(window.workspace.root), gpus="cpu",
        runs_dir=window.workspace.runs_dir, target=target, placement=placement,
    )  # fmt: skip


def opened(window, qtbot, run_id: str):
    window.runs.open_run(run_id)
    monitor = window.runs.monitor
    qtbot.waitUntil(lambda: not monitor.loading, timeout=10_000)
    return monitor


def test_monitor_shows_a_queued_slurm_run_with_its_reason_and_script(window, qtbot):
    slurm = {"job_id": "42", "reason": "Resources", "script": SCRIPT, "partition": "debug"}
    placement = {"kind": "slurm", "remote_workspace": "/scratch/ws", "slurm": slurm}
    run_id = record_run(window, "cluster", placement)
    monitor = opened(window, qtbot, run_id)
    monitor.poll_timer.setInterval(200)  # what a poll shows, not how often it comes (2 s)
    assert "● queued" in monitor.badge.text() and "Slurm: Resources" in monitor.badge.text()
    assert monitor.title.text().endswith(f"{run_id} · on cluster, Slurm job 42")
    assert monitor.remote.script_button.isVisibleTo(monitor)
    monitor.remote.script_button.click()
    view = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QtScriptView))
    qtbot.addWidget(view)
    assert view.isVisible() and view.text.isReadOnly()
    assert view.text.toPlainText() == SCRIPT
    assert any("Slurm job 42" in label.text() for label in view.findChildren(QLabel))
    view.reject()
    # Slurm's word changes while it waits: the badge follows at the next poll; the job
    # starts on a node: the title says where.
    slurm.update(reason="Priority", node_list="node7")
    queries.set_placement(window.store(), run_id, slurm=slurm)
    qtbot.waitUntil(lambda: "Slurm: Priority" in monitor.badge.text(), timeout=5_000)
    assert monitor.title.text().endswith("Slurm job 42 on node7")
    fetch = monitor.export_button.menu().findChild(QAction, "fetchOutputsAction")
    monitor.export_button.menu().aboutToShow.emit()
    assert fetch.isEnabled()  # its outputs are on the cluster
    # It ran and ended between two polls, its mirror's channel gone before the monitor got
    # there (a short job): the monitor reads the stored record whole.
    points = [(0, "train/loss", step, 1.0 / step, 0, step) for step in (1, 2, 3)]
    queries.add_metrics(window.store(), run_id, points)
    queries.set_run_status(window.store(), run_id, "finished")

    def shown_whole() -> bool:
        return "● finished" in monitor.badge.text() and monitor.run.point_count("train/loss") == 3

    qtbot.waitUntil(shown_whole, timeout=10_000)

    # A run of this machine: no place, no reason, no script, nothing to fetch.
    local = record_run(window)
    monitor = opened(window, qtbot, local)
    assert monitor.title.text().endswith(local) and "Slurm" not in monitor.badge.text()
    assert not monitor.remote.script_button.isVisibleTo(monitor)
    monitor.export_button.menu().aboutToShow.emit()
    assert not fetch.isEnabled()
    monitor.close_run()


def test_fetch_outputs_from_the_browser_and_the_monitor(window, sshd, tmp_path, qtbot):  # noqa: F811
    workspace, store, run_id, _ = remote_run(tmp_path, sshd)
    assert workspace.root == window.workspace.root
    queries.set_run_status(store, run_id, "finished")  # no mirror to start for it
    local = record_run(window)
    window.runs.show_tab(EXPERIMENTS_TAB)
    browser = window.runs.browser
    browser.refresh()
    browser.select(local)
    assert not browser.run_menu().findChild(QAction, "fetchOutputsAction").isEnabled()
    browser.select(run_id)
    action = browser.run_menu().findChild(QAction, "fetchOutputsAction")
    assert action.isEnabled()
    action.trigger()
    task = window.runs.fetch_task
    qtbot.waitUntil(lambda: not task.busy, timeout=60_000)
    said = window.statusBar().currentMessage()
    assert said.startswith(f"Fetched lm, cls of run {run_id}") and "sha256 checked" in said
    stages = {s.name: s.output_dir for s in queries.list_stages(store, run_id)}
    assert stages["cls"].startswith(str(workspace.run_dir(run_id)))
    assert queries.get_run(store, run_id).placement["outputs"] == {"lm": "local", "cls": "local"}

    # Again from the monitor's Export menu: nothing is sent twice.
    monitor = opened(window, qtbot, run_id)
    menu = monitor.export_button.menu()
    menu.aboutToShow.emit()
    fetch = next(a for a in menu.actions() if a.objectName() == "fetchOutputsAction")
    assert fetch.isEnabled()
    fetch.trigger()
    task = window.runs.fetch_task
    qtbot.waitUntil(lambda: not task.busy, timeout=60_000)
    assert "(0.0 MiB sent" in window.statusBar().currentMessage()
    monitor.close_run()


PLAN = """\
version: 1
name: remote-window
stages:
  - name: mlm
    kind: pretrain
    objective: masked_lm
    model: {builtin: bert-tiny, vocab_size: 120}
    data: {path: corpus.txt, format: text, max_length: 16, eval_ratio: 0.1}
    max_steps: 4
    batch_size: 16
    eval: {every_steps: 2, metrics: [loss]}
"""


def plan_folder(tmp_path) -> Path:
    """A folder with the short plan and its corpus."""
    plan_dir = tmp_path / "plan"
    plan_dir.mkdir()
    rng = random.Random(3)
    words = "the a good bad day team room trip lab match".split()
    lines = (" ".join(rng.choice(words) for _ in range(8)) for _ in range(120))
    (plan_dir / "corpus.txt").write_text("\n".join(lines) + "\n")
    (plan_dir / "plan.yaml").write_text(PLAN)
    return plan_dir


@pytest.mark.slow
def test_run_on_a_target_from_the_devices_dock_is_followed_through_its_mirror(
    window,
    sshd,  # noqa: F811
    tmp_path,
    qtbot,
):
    from app.model.plan_document import PlanDocument
    from tests.app.test_targets_dialog import add_by_form

    plan_dir = plan_folder(tmp_path)
    import sys

    fields = {
        "workdir": str(tmp_path / "there"),
        "python": sys.executable,
        "identity": str(sshd.identity),
        "options": f"UserKnownHostsFile={sshd.known_hosts}, BatchMode=yes",
    }
    assert add_by_form(window, "box", sshd.url, **fields).added == "box"
    window.set_document(PlanDocument.from_file(plan_dir / "plan.yaml"))
    window.target_picker.choose("box")
    window.run_plan()
    task = window.run_start.remote_task
    qtbot.waitUntil(lambda: not task.busy, timeout=120_000)
    (run,) = queries.list_runs(window.store())
    assert run.target == "box" and run.placement["kind"] == "ssh"
    monitor = window.runs.monitor
    assert monitor.run is not None and monitor.run.run_id == run.id
    assert f"· on box ({run.placement.get('host')})" in monitor.title.text()

    def followed_to_the_end() -> bool:
        return "finished" in monitor.badge.text() and monitor.run.point_count("train/loss") > 0

    qtbot.waitUntil(followed_to_the_end, timeout=240_000)
    from engine.store import Store

    # The badge follows the channel; the record is final once the mirror has let go.
    qtbot.waitUntil(lambda: not mirror_running(Path(run.run_dir)), timeout=30_000)

    there = Store.open(tmp_path / "there" / "workspace" / "stagelab.db")
    for key in ("train/loss", "eval/loss"):  # every point once, mirrored into this record
        mirrored = queries.read_series(window.store(), run.id, key, stage_idx=0)
        assert list(map(list, mirrored)) == list(
            map(list, queries.read_series(there, run.id, key, stage_idx=0))
        )
        assert len(mirrored[0]) >= 2
    monitor.close_run()
