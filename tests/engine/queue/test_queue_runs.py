"""A queue of three plans with a failing middle one runs the third (real engine processes,
tiny plans): the items end done, failed (with the engine's sentence), done; the workspace's
notify hook ran in the engine for the finished runs, the failure and the NaN loss of the
third plan. `queue add/ls/rm` and the one-runner lock around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.process.test_runs import cli_here

GOOD = """
name: queued-good
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: DATA/corpus.txt, max_length: 16}
    batch_size: 16
    max_steps: 2
"""

BROKEN = """
name: queued-broken
stages:
  - name: cls
    kind: train
    task: sequence_classification
    model: {path: broken-model}
    data: {path: DATA/sentiment.csv, max_length: 24}
    batch_size: 8
    max_steps: 3
"""

# The diverging plan of tests/engine/runtime/test_record_failures.py: SGD at lr 10 turns
# the loss NaN within a few steps, and the run still finishes.
DIVERGING = """
name: queued-diverge
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: DATA/corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 16
    log_every_steps: 4
    max_grad_norm: null
    optimizer: {name: sgd, lr: 10.0, momentum: 0.9}
"""

# The hook appends one JSON line per call: what the engine told it.
HOOK = (
    'python3 -c "import json,os;'
    "print(json.dumps({k: os.environ[k] for k in ('STAGELAB_RUN','STAGELAB_STATUS',"
    "'STAGELAB_EVENT','STAGELAB_MESSAGE')}))\" >> HOOKFILE"
)


def cli(ws: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    if args[0] == "show" or args[:2] in (("queue", "add"), ("queue", "rm"), ("queue", "ls")):
        return cli_here(["--workspace", str(ws), *args])  # they return at once
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory, data_dir):
    """The queue of three plans (and a removed fourth), run once by `stagelab queue run`."""
    root = tmp_path_factory.mktemp("queue")
    ws = root / "ws"
    model = root / "broken-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 100}))
    (model / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    plans = []
    for name, text in [("good", GOOD), ("broken", BROKEN), ("diverge", DIVERGING), ("gone", GOOD)]:
        path = root / f"{name}.yaml"
        path.write_text(text.replace("DATA", str(data_dir)))
        plans.append(path)
    hookfile = root / "hook.jsonl"
    ws.mkdir()
    (ws / "settings.yaml").write_text(
        "notify:\n  min_seconds: 0\n  command: "
        + json.dumps(HOOK.replace("HOOKFILE", str(hookfile)))
        + "\n"
    )
    for path in plans:
        added = cli(ws, "queue", "add", str(path))
        assert added.returncode == 0, added.stderr
    assert cli(ws, "queue", "rm", "4").returncode == 0
    proc = cli(ws, "queue", "run")
    return ws, proc, hookfile


def test_a_failing_middle_plan_does_not_stop_the_queue(ran):
    ws, proc, _ = ran
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one item failed
    items = json.loads(cli(ws, "queue", "ls", "--json").stdout)
    assert [(i["id"], i["status"]) for i in items] == [(1, "done"), (2, "failed"), (3, "done")]
    assert items[1]["error"].startswith(f"run {items[1]['run_id']} failed: JSONDecodeError")
    shown = json.loads(cli(ws, "show", items[2]["run_id"], "--json").stdout)
    assert shown["status"] == "finished"
    # Each started after the one before it had ended: one after another.
    assert items[0]["ended_ms"] <= items[1]["started_ms"] <= items[1]["ended_ms"]
    assert items[1]["ended_ms"] <= items[2]["started_ms"]
    assert "nothing left to run" in proc.stdout
    listed = cli(ws, "queue", "ls").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listed if not line.startswith("\t")] == [
        ["1", "done"],
        ["2", "failed"],
        ["3", "done"],
    ]
    assert listed[2] == "\t" + items[1]["error"]  # why, under the failed item


def test_the_notify_hook_ran_in_the_engine_on_finish_failure_and_nan(ran):
    ws, _, hookfile = ran
    items = json.loads(cli(ws, "queue", "ls", "--json").stdout)
    calls = [json.loads(line) for line in hookfile.read_text().splitlines()]
    said = [(c["STAGELAB_RUN"], c["STAGELAB_EVENT"], c["STAGELAB_STATUS"]) for c in calls]
    good, broken, diverge = (i["run_id"] for i in items)
    assert sorted(said) == sorted(
        [
            (good, "finished", "finished"),
            (broken, "failed", "failed"),
            (diverge, "nan", "running"),
            (diverge, "finished", "finished"),
        ]
    )
    nan = next(c for c in calls if c["STAGELAB_EVENT"] == "nan")
    assert nan["STAGELAB_MESSAGE"].startswith("train/loss is nan at step")
    failed = next(c for c in calls if c["STAGELAB_EVENT"] == "failed")
    assert failed["STAGELAB_MESSAGE"].startswith("JSONDecodeError")


def test_one_queue_runner_per_workspace(tmp_path):
    from engine.queue.runner import lock_queue

    ws = tmp_path / "ws"
    ws.mkdir()
    held = lock_queue(ws)
    try:
        proc = cli(ws, "queue", "run")
        assert proc.returncode == 2
        assert f"a queue runner already runs in this workspace (pid {os.getpid()})" in proc.stdout
        assert "runs already" in cli(ws, "queue", "run", "--detach").stdout
    finally:
        held.close()
