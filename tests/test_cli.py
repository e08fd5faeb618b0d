"""The `stagelab` command line as a person uses it: exit codes, messages, JSON."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.resources import plan_templates

ROOT = Path(__file__).resolve().parents[1]
TINY = """
name: tiny
stages:
  - name: only
    kind: train
    model: {builtin: bert-tiny, vocab_size: 200}
    data: {path: reviews.csv, max_length: 16}
    batch_size: 8
    max_steps: 3
    eval: {every_steps: 2, metrics: [loss, accuracy], samples: 2}
"""
BROKEN = """
name: broken
stages:
  - name: a
    kind: pretrain
    model: {builtin: bert-tiny}
    data: {path: corpus.txt}
    optimizer: {lr: -0.1, lrr: 3}
  - name: b
    kind: train
    model: {from_stage: nope}
    data: {path: x.csv}
    batch_size: 0
"""


def stagelab(
    *args: str, ws: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    prefix = ["--workspace", str(ws)] if ws else []
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *prefix, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.parametrize("plan", plan_templates(), ids=lambda p: p.name)
def test_validate_accepts_every_shipped_plan(plan):
    proc = stagelab("validate", str(plan))
    assert proc.returncode == 0, proc.stderr
    assert "valid plan" in proc.stdout


def test_validate_lists_every_problem_and_exits_2(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    proc = stagelab("validate", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    for line in (
        "stages[0].optimizer.lr: must be greater than 0 (got -0.1)",
        "stages[0].optimizer.lrr: unknown setting 'lrr'; did you mean 'lr'?",
        "stages[1].batch_size: must be at least 1 (got 0)",
        "stages[1].model.from_stage: no stage is called 'nope' (earlier stages: 'a')",
        "stages[0].data.path: file or folder not found: corpus.txt",
        "stages[1].data.path: file or folder not found: x.csv",
    ):
        assert line in proc.stderr
    assert "6 problem(s)" in proc.stderr


def test_validate_missing_file_and_bad_yaml(tmp_path):
    missing = stagelab("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "file not found" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [\n")
    proc = stagelab("validate", str(bad))
    assert proc.returncode == 2 and "line" in proc.stderr and "Traceback" not in proc.stderr


def test_run_refuses_an_invalid_plan_and_records_nothing(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    proc = stagelab("run", str(path), ws=tmp_path / "ws")
    assert proc.returncode == 2 and "nothing was started" in proc.stderr
    listing = json.loads(stagelab("ls", "--json", ws=tmp_path / "ws").stdout)
    assert listing == {"experiments": [], "sweeps": []}


def test_help_explains_the_headless_demo():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    proc = stagelab(env=env)  # no command, no screen: help instead of a window
    assert proc.returncode == 0
    assert "stagelab run --demo" in proc.stdout and "No screen found" in proc.stdout


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    data.mkdir()
    with open(data / "reviews.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(64):
            writer.writerow(
                [f"item {i} was {'good' if i % 2 else 'bad'}", "pos" if i % 2 else "neg"]
            )
    plan = data / "tiny.yaml"
    plan.write_text(TINY)
    ws = root / "ws"
    proc = stagelab("run", str(plan), ws=ws)
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(stagelab("ls", "--json", ws=ws).stdout)["experiments"][0]["runs"][0]["id"]
    return ws, run_id, plan


@pytest.mark.slow
def test_ls_and_show_json(finished_run):
    ws, run_id, _ = finished_run
    listing = json.loads(stagelab("ls", "--json", ws=ws).stdout)
    [exp] = listing["experiments"]
    assert exp["name"] == "tiny" and exp["parent_id"] is None
    assert exp["runs"][0]["status"] == "finished" and exp["runs"][0]["number"] == 1
    shown = json.loads(stagelab("show", run_id[:6], "--json", ws=ws).stdout)
    assert set(shown) >= {
        "id",
        "experiment",
        "status",
        "pid",
        "socket",
        "started_ms",
        "ended_ms",
        "stages",
    }
    [stage] = shown["stages"]
    assert stage["name"] == "only" and stage["kind"] == "train" and stage["status"] == "finished"
    assert Path(stage["output_dir"], "config.json").exists()
    assert set(stage["metrics"]) >= {"train/loss", "eval/loss", "eval/accuracy"}
    text = stagelab("show", run_id, ws=ws).stdout
    assert "finished" in text and "only (train)" in text


@pytest.mark.slow
def test_export_writes_every_point(finished_run, tmp_path):
    ws, run_id, _ = finished_run
    out = tmp_path / "m.csv"
    proc = stagelab("export", run_id, "--metrics", str(out), ws=ws)
    assert proc.returncode == 0
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["stage", "step", "key", "value", "time"]
    losses = [int(r["step"]) for r in rows if r["key"] == "train/loss"]
    assert losses == [1, 2, 3]
    assert {r["stage"] for r in rows} == {"only"}


@pytest.mark.slow
def test_export_samples_writes_a_line_per_stage_step_and_row(finished_run, tmp_path):
    ws, run_id, _ = finished_run
    out = tmp_path / "s.jsonl"
    proc = stagelab("export", run_id, "--samples", str(out), ws=ws)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 4 sample outputs" in proc.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # Evaluations at step 2 and at the end (3), two eval rows each (issue 31, item 3).
    assert [(d["stage"], d["step"], d["row"]) for d in lines] == [
        ("only", 2, 0),
        ("only", 2, 1),
        ("only", 3, 0),
        ("only", 3, 1),
    ]
    assert all(d["task"] == "classify" and d["output"] in ("neg", "pos") for d in lines)
    assert all(d["target"] in ("neg", "pos") and 0.5 <= d["score"] <= 1 for d in lines)
    assert lines[0]["input"] == lines[2]["input"] and lines[0]["input"].startswith("item ")


@pytest.mark.slow
def test_clone_keeps_lineage_and_resume_refuses_a_finished_run(finished_run):
    ws, run_id, _ = finished_run
    source = json.loads(stagelab("ls", "--json", ws=ws).stdout)["experiments"][0]["id"]
    proc = stagelab("clone", source, "--name", "tiny v2", ws=ws)
    assert proc.returncode == 0
    clone_id = proc.stdout.strip()
    experiments = {
        e["id"]: e for e in json.loads(stagelab("ls", "--json", ws=ws).stdout)["experiments"]
    }
    assert (
        experiments[clone_id]["parent_id"] == source and experiments[clone_id]["name"] == "tiny v2"
    )
    refused = stagelab("resume", run_id, ws=ws)
    assert refused.returncode == 2 and "finished" in refused.stderr
    unknown = stagelab("show", "zzzzzz", ws=ws)
    assert unknown.returncode == 2 and "stagelab ls" in unknown.stderr


@pytest.mark.slow
def test_running_the_same_plan_again_adds_a_run_to_its_experiment(finished_run):
    ws, _, plan = finished_run
    assert stagelab("run", str(plan), "--detach", ws=ws).returncode == 0
    [exp] = [
        e
        for e in json.loads(stagelab("ls", "--json", ws=ws).stdout)["experiments"]
        if e["name"] == "tiny"
    ]
    assert [r["number"] for r in exp["runs"]] == [1, 2]
