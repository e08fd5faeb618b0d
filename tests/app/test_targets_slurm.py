"""Run on a Slurm target from the window, on a real one-node cluster (slurm_fixtures.py),
through a real sshd for slurm+ssh://:
the batch script is shown before anything is sent (Cancel sends and records nothing,
Submit sends), the monitor shows `queued` with Slurm's reason, Stop of the queued run
cancels its job; a short plan trains as a job and is followed to `finished` with every
point equal to the job's own record."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from app.model.plan_document import PlanDocument
from app.qt.remote.qt_add_target import QtAddTargetDialog
from engine.remote import slurm
from engine.remote.mirror_process import mirror_running
from engine.remote.shell import LocalShell
from engine.store import Store, queries
from tests.app.test_targets_runs import plan_folder
from tests.engine.remote.conftest import sshd  # noqa: F401 - the fixture
from tests.engine.remote.slurm_fixtures import slurm_cluster  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(slurm_cluster, monkeypatch):  # noqa: F811
    """The cluster, its SLURM_CONF in this process's environment (sbatch, the mirror and
    the job inherit it, as on a login node)."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    return slurm_cluster


def slurm_target(window, tmp_path, name: str, sbatch: str = "", server=None) -> str:  # noqa: ANN001
    """A Slurm target added through the form: slurm:// (this machine is the login node), or
    slurm+ssh:// through the test's sshd (`server`), which passes SLURM_CONF on."""
    form = QtAddTargetDialog(window.store, window)
    form.name_edit.setText(name)
    form.workdir_edit.setText(str(tmp_path / "cluster-home"))
    form.python_edit.setText(sys.executable)
    if server is None:
        form.url_edit.setText("slurm://")
    else:
        form.url_edit.setText(server.url.replace("ssh://", "slurm+ssh://"))
        form.identity_edit.setText(str(server.identity))
        conf = os.environ["SLURM_CONF"]
        form.options_edit.setText(
            f"UserKnownHostsFile={server.known_hosts}, BatchMode=yes, SetEnv=SLURM_CONF={conf}"
        )
    form.slurm_edits["partition"].setText("debug")
    form.slurm_edits["time"].setText("30")
    form.sbatch_edit.setPlainText(sbatch)
    form.accept()
    assert form.added == name, form.problem.text()
    return str(tmp_path / "cluster-home")


def script_shown(window, qtbot):
    """Run on the picked target: the script view of the start, once written."""
    window.run_plan()
    start = window.run_start.remote_task
    qtbot.waitUntil(lambda: start.script_view is not None or not start.busy, timeout=60_000)
    assert start.script_view is not None, window.statusBar().currentMessage()
    return start, start.script_view


def test_stop_of_a_queued_slurm_run_from_the_window_cancels_its_job(
    window,
    cluster,
    sshd,  # noqa: F811
    tmp_path,
    qtbot,
):
    # slurm+ssh://: the script, sbatch and scancel go through OpenSSH to the login node.
    slurm_target(window, tmp_path, "later", sbatch="--begin=now+1hour", server=sshd)
    window.set_document(PlanDocument.from_file(plan_folder(tmp_path) / "plan.yaml"))
    window.target_picker.choose("later")
    # Cancel: nothing sent, nothing recorded.
    start, view = script_shown(window, qtbot)
    text = view.text.toPlainText()
    assert text.startswith("#!/bin/bash\n#SBATCH --job-name=stagelab-RUN_ID\n")
    assert "#SBATCH --partition=debug" in text and "#SBATCH --begin=now+1hour" in text
    assert view.isVisible() and view.text.isReadOnly()
    assert any("Nothing has been sent yet" in label.text() for label in view.findChildren(QLabel))
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    assert not start.busy and start.script_view is None
    assert "nothing sent, nothing recorded" in window.statusBar().currentMessage()
    assert queries.list_runs(window.store()) == []
    assert not (tmp_path / "cluster-home" / "workspace").exists()
    assert not (tmp_path / "cluster-home" / "blobs").exists()

    # Submit: the files go, the run is recorded and its job waits (--begin).
    start, view = script_shown(window, qtbot)
    qtbot.mouseClick(view.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not start.busy, timeout=120_000)
    (run,) = queries.list_runs(window.store())
    assert run.target == "later" and run.placement["kind"] == "slurm", run.error
    job_id = run.placement["slurm"]["job_id"]
    assert run.placement["slurm"]["script"] == text.replace("RUN_ID", run.id)
    monitor = window.runs.monitor
    assert monitor.run.run_id == run.id
    # Slurm's reason arrives through the mirror (it asks Slurm every 5 s).
    qtbot.waitUntil(lambda: "Slurm: BeginTime" in monitor.badge.text(), timeout=90_000)
    assert "● queued" in monitor.badge.text() and f"Slurm job {job_id}" in monitor.title.text()
    assert monitor.stop_button.isEnabled() and not monitor.pause_button.isEnabled()
    assert monitor.stop_button.toolTip().startswith("Cancel the run's waiting Slurm job")
    qtbot.mouseClick(monitor.stop_button, Qt.MouseButton.LeftButton)
    assert not monitor.stop_button.isEnabled()  # one cancel at a time
    qtbot.waitUntil(lambda: "● stopped" in monitor.badge.text(), timeout=60_000)
    assert slurm.job(LocalShell(), job_id).state == "CANCELLED"
    assert queries.get_run(window.store(), run.id).status == "stopped"
    assert f"Slurm job {job_id} cancelled" in "\n".join(monitor.console.raw)
    monitor.close_run()


def test_a_run_on_a_slurm_target_from_the_window_is_followed_to_finished(
    window, cluster, tmp_path, qtbot
):
    workdir = slurm_target(window, tmp_path, "cl")
    window.set_document(PlanDocument.from_file(plan_folder(tmp_path) / "plan.yaml"))
    window.target_picker.choose("cl")
    picker = window.gpu_picker
    node = "Node 1 of 1: CPU, 1 process (no GPUs per node set)"
    assert [picker.item(i).text() for i in range(picker.count())] == [node, "Partition debug"]
    # stagelab target check keeps sinfo's partitions: the picker says the run's.
    from engine.cli.main import main

    assert main(["--workspace", str(window.workspace.root), "target", "check", "cl"]) == 0
    window.target_picker.choose("cl")
    assert [picker.item(i).text() for i in range(picker.count())] == [
        node,
        "Partition debug: 1 node(s), time limit infinite",
    ]
    start, view = script_shown(window, qtbot)
    qtbot.mouseClick(view.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not start.busy, timeout=120_000)
    (run,) = queries.list_runs(window.store())
    monitor = window.runs.monitor
    assert monitor.run.run_id == run.id and run.placement["kind"] == "slurm", run.error
    job_id = run.placement["slurm"]["job_id"]
    there = f"{workdir}/workspace"

    def log() -> str:
        return "\n".join(p.read_text() for p in (tmp_path / "cluster-home").rglob("slurm-*.out"))

    def followed_to_the_end() -> bool:
        text = monitor.badge.text()
        assert "failed" not in text and "interrupted" not in text, log()
        return "● finished" in text and monitor.run.point_count("train/loss") > 0

    qtbot.waitUntil(followed_to_the_end, timeout=240_000)
    # The badge follows the channel; the record is final once the mirror has let go.
    qtbot.waitUntil(lambda: not mirror_running(Path(run.run_dir)), timeout=30_000)
    assert f"Slurm job {job_id}" in monitor.title.text()
    job = Store.open(f"{there}/stagelab.db")
    for key in ("train/loss", "eval/loss"):  # every point once, equal to the job's record
        mirrored = queries.read_series(window.store(), run.id, key, stage_idx=0)
        assert list(map(list, mirrored)) == list(
            map(list, queries.read_series(job, run.id, key, stage_idx=0))
        )
        assert len(mirrored[0]) >= 2
    assert queries.get_run(job, run.id).status == "finished"
    monitor.close_run()
