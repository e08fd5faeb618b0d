"""`stagelab queue add PLAN --target NAME`: the queue runner starts the plan on the target
(the real OpenSSH server on 127.0.0.1) and follows the record its mirror writes here until
the run ends; an unreachable target's item fails with the start's sentence and the queue
goes on. The desktop's notify hook runs in the engine there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.engine.remote.conftest import add_target, free_port

PLAN = """\
name: queued-remote
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: data/corpus.txt, max_length: 16}
    max_steps: 2
    batch_size: 16
"""


def cli(ws, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )


@pytest.mark.slow
def test_a_queued_plan_runs_on_its_target_after_an_unreachable_one(
    sshd, bare_python, data_dir, tmp_path
):
    ws, workdir = tmp_path / "ws", tmp_path / "remote"
    (tmp_path / "plan" / "data").mkdir(parents=True)
    shutil.copy(data_dir / "corpus.txt", tmp_path / "plan" / "data" / "corpus.txt")
    plan = tmp_path / "plan" / "plan.yaml"
    plan.write_text(PLAN)
    add_target(ws, "box", sshd.url, *sshd.target_args(workdir, bare_python))
    # The desktop's notify settings travel with the run: its engine there runs the hook
    # (the loopback target writes the file here).
    said = tmp_path / "said.txt"
    hook = f'echo "$STAGELAB_RUN $STAGELAB_EVENT" >> {said}'
    (ws / "settings.yaml").write_text(f"notify: {{min_seconds: 0, command: '{hook}'}}\n")
    # Nothing listens there: the start fails with one sentence, before anything is recorded.
    gone = f"ssh://{sshd.user}@127.0.0.1:{free_port()}"
    add_target(ws, "gone", gone, *sshd.target_args(tmp_path / "nowhere", bare_python))
    assert cli(ws, "target", "check", "box").returncode == 0
    for target in ("gone", "box"):
        added = cli(ws, "queue", "add", str(plan), "--target", target)
        assert added.returncode == 0, added.stderr
    assert cli(ws, "queue", "add", str(plan), "--target", "nope").returncode == 2
    done = cli(ws, "queue", "run")
    assert done.returncode == 1, done.stdout + done.stderr
    items = json.loads(cli(ws, "queue", "ls", "--json").stdout)
    assert [(i["target"], i["status"]) for i in items] == [("gone", "failed"), ("box", "done")]
    assert items[0]["run_id"] is None and items[0]["error"]
    shown = json.loads(cli(ws, "show", items[1]["run_id"], "--json").stdout)
    assert shown["status"] == "finished"
    assert shown["where"]["target"] == "box" and shown["where"]["kind"] == "ssh"
    assert said.read_text().split() == [items[1]["run_id"], "finished"]
