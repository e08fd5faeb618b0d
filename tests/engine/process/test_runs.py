"""Whole runs through the real CLI and a real engine subprocess: stage handoff, outputs that
plain transformers loads, exact resume after SIGKILL, truthful status, one engine per run."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.channel.client import ChannelClient
from tests.engine.process.live_kill import (
    first_run_id,
    kill_mid_stage,
    pause_now,
)

pytestmark = pytest.mark.slow

PLAN = """
name: chain
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 12
    eval: {every_steps: 6, metrics: [loss, perplexity, accuracy]}
    checkpoint: {every_steps: 4}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 150
    log_every_steps: 4
    regularization: {dropout: 0.2}
    augmentation: {swap_prob: 0.1}
    freezing: {embeddings: true, layers: 2, unfreeze: {every_steps: 40}}
    eval: {every_steps: 25, metrics: [loss, accuracy, f1, confusion_matrix]}
    checkpoint: {every_steps: 10}
"""


def stagelab(
    ws: Path, *args: str, check: bool = True, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """The CLI as a person runs it, in this process (a process of its own spent ~0.5 s of
    CPU importing, ~75 times a suite); `env`: variables to add, in a process of its own."""
    argv = ["--workspace", str(ws), *args]
    if env is None:
        proc = cli_here(argv, timeout)
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "engine.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, **env),
        )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"stagelab {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def plan_file(data_dir: Path, tmp_path: Path) -> Path:
    path = data_dir / f"chain-{tmp_path.name}.yaml"
    path.write_text(PLAN)
    return path


@pytest.fixture(scope="module")
def finished(data_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    """One uninterrupted run of PLAN (workspace, run id): the outputs, the environment and
    the reference of the resume test are read from it (trained once, not once each)."""
    plan = data_dir / "chain-finished.yaml"
    plan.write_text(PLAN)
    ws = tmp_path_factory.mktemp("finished") / "ws"
    proc = stagelab(ws, "run", str(plan), "--name", "reference")
    assert "finished" in proc.stdout
    return ws, json.loads(stagelab(ws, "ls", "--json").stdout)["experiments"][0]["runs"][0]["id"]


def cli_here(argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """`stagelab ARGV` run by this process, as subprocess.run would report it; a command
    still running after `timeout` seconds fails the test (SIGALRM, on the main thread)."""
    from engine.cli.main import main

    def too_long(*_) -> None:
        raise AssertionError(f"stagelab {' '.join(argv)} did not end within {timeout} s")

    alarm = timeout is not None and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, too_long) if alarm else None
    if alarm:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def in_process(ws: Path, *args: str) -> str:
    """A `stagelab` command that only reads the record, run in this process (its output):
    tests poll `show`, and a process each time cost ~0.4 s of CPU for its imports."""
    done = cli_here(["--workspace", str(ws), *args])
    assert done.returncode == 0, (
        f"stagelab {' '.join(args)} exited {done.returncode}: {done.stderr}"
    )
    return done.stdout


def show(ws: Path, run_id: str) -> dict:
    return json.loads(in_process(ws, "show", run_id, "--json"))


def export(ws: Path, run_id: str, out: Path) -> list[tuple]:
    in_process(ws, "export", run_id, "--metrics", str(out))
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    # Wall times and throughput are measurements, not training results; the tokens seen
    # are counted (and checkpointed), so a resumed run must equal the uninterrupted one.
    return [
        (r["stage"], int(r["step"]), r["key"], r["value"])
        for r in rows
        if not r["key"].startswith("perf/") or r["key"] == "perf/tokens_seen"
    ]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_hands_over_between_stages_and_outputs_load_in_transformers(finished):
    ws, run_id = finished
    data = show(ws, run_id)
    assert data["status"] == "finished"
    assert [s["status"] for s in data["stages"]] == ["finished", "finished"]
    assert data["stages"][1]["metrics"]["eval/accuracy"] > 0
    # The output folders are what plain transformers loads, with the same logits.
    code = f"""
import torch, json
from transformers import AutoModelForSequenceClassification, AutoModelForMaskedLM, AutoTokenizer
out = {data["stages"][1]["output_dir"]!r}
tok = AutoTokenizer.from_pretrained(out)
model = AutoModelForSequenceClassification.from_pretrained(out).eval()
enc = tok(["a great day", "an awful room"], return_tensors="pt", padding=True)
print(json.dumps(model(**enc).logits.tolist()))
AutoModelForMaskedLM.from_pretrained({data["stages"][0]["output_dir"]!r})
print(model.config.id2label)
"""
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "positive" in loaded.stdout.splitlines()[1]
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = data["stages"][1]["output_dir"]
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    enc = AutoTokenizer.from_pretrained(out)(
        ["a great day", "an awful room"], return_tensors="pt", padding=True
    )
    torch.testing.assert_close(
        model(**enc).logits, torch.tensor(json.loads(loaded.stdout.splitlines()[0]))
    )


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, plan_file, finished):
    ws = tmp_path / "ws"
    ref_ws, ref_id = finished

    # --no-cache: a stage cache must not hand this run anything.
    run_id = stagelab(
        ws, "run", str(plan_file), "--name", "killed", "--detach", "--no-cache"
    ).stdout.strip()
    from engine.store import Store, queries

    store = Store.open(ws / "stagelab.db")
    kill_mid_stage(ws, run_id, 1)  # during stage 2, after one of its checkpoints
    wait_for(
        lambda: show(ws, run_id)["status"] == "interrupted", 10, "status interrupted within 10 s"
    )
    resumed = stagelab(ws, "resume", run_id)
    assert "finished" in resumed.stdout
    assert show(ws, run_id)["status"] == "finished"
    ours = export(ws, run_id, tmp_path / "resumed.csv")
    theirs = export(ref_ws, ref_id, tmp_path / "reference.csv")
    assert len(ours) > 300 and ours == theirs
    resumed_at = [e for e in queries.list_events(store, run_id, kind="resume")]
    assert resumed_at and "step 0" not in resumed_at[0].message  # continued mid-stage
    keys = {(stage, key) for stage, _, key, _ in ours}
    for stage in {stage for stage, _ in keys}:  # tokens seen grow within each stage
        seen = [float(v) for st, _, k, v in ours if (st, k) == (stage, "perf/tokens_seen")]
        assert seen and seen[0] > 0 and seen == sorted(set(seen)), seen
    for stage, key in keys:  # no repeated and no missing steps
        steps = [s for st, s, k, _ in ours if (st, k) == (stage, key)]
        assert len(steps) == len(set(steps))
        if key.startswith("train/"):
            assert steps == list(range(1, len(steps) + 1))


def test_ctrl_c_stops_at_a_checkpoint_and_resume_finishes(tmp_path, plan_file):
    ws = tmp_path / "ws"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws), "run", str(plan_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    # Held as soon as it answers, however fast it trains (a forked engine ends the whole
    # run in seconds, faster than a CLI process polling for it could start): the Ctrl-C
    # then always finds it training.
    run_id = first_run_id(ws)
    pause_now(ws, run_id)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    out, err = proc.communicate(timeout=120)
    data = show(ws, run_id)
    assert data["status"] == "stopped", err
    assert f"stagelab resume {run_id}" in out
    stagelab(ws, "resume", run_id)
    assert show(ws, run_id)["status"] == "finished"


def test_two_engines_never_train_the_same_run(tmp_path, plan_file):
    ws = tmp_path / "ws"
    # Trains until stopped: still training when the second engine has imported.
    plan_file.write_text(PLAN.replace("max_steps: 150", "max_steps: 100000"))
    run_id = stagelab(ws, "run", str(plan_file), "--detach").stdout.strip()
    # Held (it keeps its lock) while the second engine starts: no core trains for nothing.
    pause_now(ws, run_id)
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "run",
            "--workspace",
            str(ws),
            "--run",
            run_id,
            "--resume",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2
    assert "already" in second.stderr
    live = ChannelClient.for_run(show(ws, run_id)["run_dir"], name="test")
    live.control("resume")
    live.close()
    wait_for(lambda: show(ws, run_id)["status"] == "running", 60, "the run to go on")
    refused = stagelab(ws, "resume", run_id, check=False)
    assert refused.returncode == 2 and "running" in refused.stderr
    os.kill(show(ws, run_id)["pid"], signal.SIGTERM)
    wait_for(lambda: show(ws, run_id)["status"] == "stopped", 120, "the run to stop")


def test_environment_is_recorded(finished):
    from engine.store import Store, queries

    ws, _ = finished
    store = Store.open(ws / "stagelab.db")
    run = queries.list_runs(store)[0]
    env = run.environment if isinstance(run.environment, dict) else json.loads(run.environment)
    assert env["packages"]["torch"].startswith("2.13")
    assert env["python"].count(".") == 2
    assert env["seeds"] == {"mlm": 42, "cls": 42}
    assert any(k.endswith("sentiment.csv") for k in env["data_fingerprints"])
    assert env["device"] == "cpu"
