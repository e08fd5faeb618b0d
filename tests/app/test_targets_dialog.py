"""Run → Targets… and the Devices dock's target picker: every button of the Targets
dialog and of its Add form, a check against a real OpenSSH server on 127.0.0.1 (on a
worker thread: the GUI thread keeps answering), a failed check's one sentence, and the
GPUs of a target's last check in the GPU picker."""

from __future__ import annotations

import json
import sys
import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from app.qt.remote.qt_add_target import QtAddTargetDialog
from app.qt.remote.qt_targets_dialog import QtTargetsDialog
from engine.remote.target_checks import remember
from engine.remote.targets import add_target, make_target
from engine.store import queries
from tests.engine.remote.conftest import free_port, sshd  # noqa: F401 - the fixture


def add_by_form(window, name: str, url: str, **fields) -> QtAddTargetDialog:
    form = QtAddTargetDialog(window.store, window)
    form.name_edit.setText(name)
    form.url_edit.setText(url)
    for key, value in fields.items():
        getattr(form, f"{key}_edit").setText(value)
    form.accept()
    return form


def test_the_add_form_stores_a_target_or_says_why_not(window):
    form = add_by_form(window, "box", "http://box")
    assert form.isVisible() is False and form.added is None
    assert form.problem.text().startswith("'http://box' is not a target URL")
    # Slurm settings only for a Slurm URL; the form's fields are what the CLI stores.
    form.url_edit.setText("ssh://me@box:2222")
    assert not form.slurm_box.isEnabled()
    form.url_edit.setText("slurm+ssh://me@login")
    assert form.slurm_box.isEnabled()
    form.slurm_edits["partition"].setText("gpu")
    form.slurm_edits["gpus_per_node"].setValue(4)
    form.sbatch_edit.setPlainText("--constraint=a100\n\n--mem=64G")
    form.options_edit.setText("ProxyJump=gate, ServerAliveInterval=30")
    form.accept()
    assert form.result() == QDialog.DialogCode.Accepted and form.added == "box"
    info = queries.get_target(window.store(), "box")
    assert info.url == "slurm+ssh://me@login"
    assert info.options == {
        "ssh_options": ["ProxyJump=gate", "ServerAliveInterval=30"],
        "slurm": {"partition": "gpu", "gpus_per_node": 4, "sbatch": ["--constraint=a100", "--mem=64G"]},
    }  # fmt: skip
    again = add_by_form(window, "box", "ssh://other")
    assert "exists already" in again.problem.text()
    cancel = QtAddTargetDialog(window.store, window)
    cancel.reject()
    assert cancel.result() == QDialog.DialogCode.Rejected

    # The GPU picker of a Slurm target: what each node of its jobs gets, nothing to tick.
    gpu = {
        "name": "gpu",
        "default": False,
        "nodes": 16,
        "gres": "gpu:a100:4",
        "time_limit": "2-00:00:00",
    }
    remember(window.store(), "box", {"ok": True, "lines": [], "gpus": [], "partitions": [gpu]})
    window.target_picker.choose("box")
    picker = window.gpu_picker
    assert [picker.item(i).text() for i in range(picker.count())] == [
        "Node 1 of 1: 4 GPUs (0–3)",
        "Partition gpu: 16 node(s), gpu:a100:4, time limit 2-00:00:00",
    ]
    assert not picker.item(0).flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert picker.selection() == "cpu" and "Run → Targets…" in picker.item(0).toolTip()
    big = make_target("big", "slurm://", {"slurm": {"nodes": 6, "gpus_per_node": 1}})
    add_target(window.store(), big)
    remember(
        window.store(), "big", {"ok": True, "gpus": [], "partitions": [{**gpu, "default": True}]}
    )
    window.target_picker.choose("big")
    rows = [picker.item(i).text() for i in range(picker.count())]
    assert rows[0] == "Node 1 of 6: GPU 0" and len(rows) == 6
    assert rows[4] == "… and 2 more nodes alike" and rows[5].startswith("Partition gpu: 16")


def test_targets_dialog_checks_over_ssh_and_the_picker_follows(
    window,
    sshd,  # noqa: F811
    tmp_path,
    qtbot,
    capsys,
):
    args = {
        "workdir": str(tmp_path / "there"),
        "python": sys.executable,  # this venv's Stagelab: nothing to install
        "identity": str(sshd.identity),
        "options": f"UserKnownHostsFile={sshd.known_hosts}, BatchMode=yes",
    }
    assert add_by_form(window, "box", sshd.url, **args).added == "box"
    bad = dict(args, options=args["options"])
    add_by_form(window, "gone", f"ssh://{sshd.user}@127.0.0.1:{free_port()}", **bad)
    dialog = QtTargetsDialog(window.store, window.workspace, window)
    qtbot.addWidget(dialog)
    dialog.show()
    rows = [
        [dialog.table.topLevelItem(i).text(c) for c in range(4)]
        for i in range(dialog.table.topLevelItemCount())
    ]
    assert rows == [
        ["box", sshd.url, "ssh", "never checked"],
        ["gone", rows[1][1], "ssh", "never checked"],
    ]
    assert not dialog.check_button.isEnabled() and not dialog.remove_button.isEnabled()
    dialog.select("box")
    assert dialog.check_button.isEnabled()
    qtbot.mouseClick(dialog.check_button, Qt.MouseButton.LeftButton)
    assert dialog.busy.isVisibleTo(dialog) and not dialog.check_button.isEnabled()
    # The GUI thread is free while the check talks to the target.
    answered = time.monotonic()
    QApplication.processEvents()
    assert time.monotonic() - answered < 0.5
    qtbot.waitUntil(lambda: dialog.outcome.text().startswith("✓"), timeout=60_000)
    said = dialog.lines.toPlainText()
    assert "connecting to" in said and "python:" in said and "disk:" in said
    assert "GPUs: none" in said or "GPU 0:" in said
    assert dialog.table.topLevelItem(0).text(3) == "ok just now"
    assert not dialog.busy.isVisibleTo(dialog)
    qtbot.waitUntil(dialog.check_button.isEnabled)  # Check again once the outcome is in

    dialog.select("gone")
    dialog.check_button.click()
    qtbot.waitUntil(lambda: dialog.outcome.text().startswith("✗"), timeout=60_000)
    assert "cannot be reached" in dialog.outcome.text()
    assert dialog.table.topLevelItem(1).text(3) == "failed just now"
    # stagelab target ls --json says each target's last check.
    from engine.cli.main import main

    capsys.readouterr()
    assert main(["--workspace", str(window.workspace.root), "target", "ls", "--json"]) == 0
    checks = {t["name"]: t["last_check"] for t in json.loads(capsys.readouterr().out)}
    assert checks["box"]["ok"] is True and "python:" in "\n".join(checks["box"]["lines"])
    assert checks["gone"]["ok"] is False and "cannot be reached" in checks["gone"]["error"]

    # The picker in the Devices dock lists the targets; a target's GPUs are its check's.
    picker = window.target_picker
    picker.reload()
    assert [picker.combo.itemText(i) for i in range(3)] == [
        "This machine", "box", "gone",
    ]  # fmt: skip
    picker.choose("box")
    if not remember_has_gpus(window, "box"):
        assert "('box', checked just now)" in window.gpu_picker.item(0).text()
    two = [
        {"index": i, "name": "NVIDIA H100", "total": 80 * 2**30, "free": 60 * 2**30} for i in (0, 1)
    ]
    remember(window.store(), "box", {"ok": True, "lines": [], "gpus": two})
    picker.choose("box")
    items = [window.gpu_picker.item(i) for i in range(window.gpu_picker.count())]
    assert [i.text() for i in items] == [
        f"GPU {i}: NVIDIA H100 · 20.0/80 GiB · at its last check" for i in (0, 1)
    ]
    assert not window.gpu_picker.timer.isActive()  # nothing polls a target
    for item in items:
        item.setCheckState(Qt.CheckState.Checked)
    assert window.gpu_picker.selection() == "0,1"
    assert window.gpu_picker.free_memory() == (60 * 2**30, "GPU 0")
    picker.choose("")  # this machine again: NVML, nothing chosen
    assert window.gpu_picker.selection() == "cpu"

    # Remove asks first; No keeps the target.
    dialog.select("gone")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
        dialog.remove_button.click()
    assert [t.name for t in queries.list_targets(window.store())] == ["box", "gone"]

    def remove_in_the_open_dialog() -> None:  # Run → Targets… is modal
        opened = QApplication.activeModalWidget()
        assert isinstance(opened, QtTargetsDialog) and opened.selected_name() == "box"
        opened.select("gone")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
            opened.remove_button.click()
        assert opened.table.topLevelItemCount() == 1
        opened.reject()

    picker.choose("box")
    QTimer.singleShot(0, remove_in_the_open_dialog)
    window.targets_action.trigger()
    assert [t.name for t in queries.list_targets(window.store())] == ["box"]
    assert picker.combo.count() == 2 and picker.target_name() == "box"


def remember_has_gpus(window, name: str) -> bool:
    options = queries.get_target(window.store(), name).options
    return bool(options["last_check"].get("gpus"))
