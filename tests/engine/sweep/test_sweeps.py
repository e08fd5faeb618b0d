"""Sweeps: the space is validated like a plan, a grid runs every combination once, bad
trials are pruned, every trial after the first reuses the stages the space does not touch,
and a killed sweep (or a killed trial engine) resumes where it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine.spec import PlanInvalid, plan_from_data
from engine.spec.sweep import grid
from tests.engine.process.live_kill import first_run_id, kill_mid_stage, pause_after_checkpoint

BASE = """
name: tiny
stages:
  - name: mlm
    kind: pretrain
    model: {builtin: bert-tiny, vocab_size: 300}
    data: {path: corpus.txt, max_length: 24, eval_ratio: 0.1}
    batch_size: 16
    max_steps: 8
    eval: {every_steps: 4, metrics: [loss]}
  - name: cls
    kind: train
    model: {from_stage: mlm}
    data: {path: sentiment.csv, max_length: 24, eval_ratio: 0.2}
    batch_size: 8
    max_steps: 24
    eval: {every_steps: 4, metrics: [loss, accuracy]}
    checkpoint: {every_steps: 4}
"""


def plan_with(sweep: dict) -> dict:
    data = yaml.safe_load(BASE)
    data["sweep"] = sweep
    return data


def problems(data_dir: Path, sweep: dict) -> list[str]:
    try:
        plan_from_data(plan_with(sweep), data_dir)
    except PlanInvalid as exc:
        return [str(p) for p in exc.problems]
    return []


OBJECTIVE = {"stage": "cls", "metric": "accuracy", "goal": "max"}


def test_a_valid_space_has_no_problems(data_dir):
    sweep = {
        "objective": {**OBJECTIVE, "target": 0.9},
        "budget": {"trials": 4, "minutes": 5},
        "sampler": "tpe",
        "space": {
            "stages.cls.optimizer.lr": {"log_uniform": [1e-4, 3e-3]},
            "stages.cls.freezing.layers": {"choice": [0, 1, 2]},
            "stages.cls.schedule.name": {"choice": ["linear", "cosine"]},
            "stages.cls.batch_size": {"int": [4, 16], "step": 4},
        },
    }
    assert problems(data_dir, sweep) == []


def test_every_problem_of_the_space_is_listed_with_its_path(data_dir):
    sweep = {
        "objective": {"stage": "nope", "metric": "accuracy"},
        "space": {
            "stages.cls.optimizer.lr": {"log_uniform": [0, 3e-3]},
            "stages.cls.optimizer.beta": {"choice": [1, 2]},
            "stages.other.seed": {"choice": [1, 2]},
            "stages.cls.freezing.layers": {"int": [3, 1]},
        },
    }
    found = problems(data_dir, sweep)
    text = "\n".join(found)
    assert "sweep.space" in text and "low must be > 0" in text and "low must be below" in text
    sweep["space"] = {
        "stages.cls.optimizer.beta": {"choice": [1, 2]},
        "stages.other.seed": {"choice": [1, 2]},
        "stages.cls.optimizer": {"choice": [1]},
        "stages.cls.optimizer.lr": {"uniform": [1e-4, 20]},  # lr ≤ 10
        "stages.cls.freezing.layers": {"choice": [0, 9]},  # bert-tiny has 2 layers
    }
    found = problems(data_dir, sweep)
    paths = {p.split(":")[0] for p in found}
    assert {
        "sweep.objective.stage",
        "sweep.space.stages.cls.optimizer.beta",
        "sweep.space.stages.other.seed",
        "sweep.space.stages.cls.optimizer",
        "sweep.space.stages.cls.optimizer.lr",
        "sweep.space.stages.cls.freezing.layers",
    } <= paths, found
    assert any("20" in p and "lr" in p for p in found)
    assert any("9" in p and "layers" in p for p in found)


def test_grid_needs_a_countable_space_and_metrics_must_be_evaluated(data_dir):
    found = problems(
        data_dir,
        {
            "objective": {**OBJECTIVE, "metric": "f1"},
            "sampler": "grid",
            "space": {"stages.cls.optimizer.lr": {"uniform": [1e-4, 1e-3]}},
        },
    )
    assert any("grid needs choice or int" in p for p in found)
    found = problems(
        data_dir,
        {
            "objective": {**OBJECTIVE, "metric": "f1"},
            "space": {"stages.cls.optimizer.lr": {"uniform": [1e-4, 1e-3]}},
        },
    )
    assert any(p.startswith("sweep.objective.metric") and "f1" in p for p in found)


def test_the_grid_lists_every_combination_once():
    combos = grid({"a": {"choice": [1, 2]}, "b": {"int": [0, 4], "step": 2}})
    assert len(combos) == 6 and len({json.dumps(c, sort_keys=True) for c in combos}) == 6


def write_plan(data_dir: Path, tmp_path: Path, sweep: dict) -> Path:
    path = data_dir / f"sweep-{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump(plan_with(sweep), sort_keys=False))
    return path


@pytest.mark.slow
def test_grid_sweep_tries_every_combination_reuses_and_prunes(tmp_path, data_dir):
    from tests.engine.process.test_runs import stagelab

    ws = tmp_path / "ws"
    plan = write_plan(
        data_dir,
        tmp_path,
        {
            "objective": OBJECTIVE,
            "budget": {"trials": 10},
            "sampler": "grid",
            "pruner": {"kind": "median", "startup_trials": 1},
            # The second learning rate trains nothing: its accuracy stays at the start and
            # is pruned against the first trial's curve.
            "space": {"stages.cls.optimizer.lr": {"choice": [3e-3, 1e-9]}},
        },
    )
    proc = stagelab(ws, "sweep", str(plan))
    sweep_id = proc.stdout.splitlines()[0].strip()
    data = json.loads(stagelab(ws, "show", sweep_id, "--json").stdout)
    assert data["status"] == "finished"
    assert "every combination" in data["stop_reason"]
    trials = data["trials"]
    assert sorted(t["params"]["stages.cls.optimizer.lr"] for t in trials) == [1e-9, 3e-3]
    assert trials[0]["status"] == "finished" and trials[0]["reused_stages"] == []
    assert trials[1]["reused_stages"] == ["mlm"]
    assert trials[1]["status"] == "pruned", trials[1]
    assert data["best"]["number"] == 0
    listing = json.loads(stagelab(ws, "ls", "--json").stdout)
    assert listing["sweeps"][0]["id"] == sweep_id and listing["sweeps"][0]["trials"] == 2


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_sweep_resumes_after_sigkill_of_a_trial_engine_and_of_the_sweep(tmp_path, data_dir):
    from engine.store import Store, queries
    from tests.engine.process.test_runs import stagelab

    ws = tmp_path / "ws"
    plan = write_plan(
        data_dir,
        tmp_path,
        {
            "objective": OBJECTIVE,
            "budget": {"trials": 3},
            "sampler": "grid",
            "pruner": {"kind": "none"},
            "space": {"stages.cls.seed": {"choice": [1, 2, 3]}},
        },
    )
    sweep_id = stagelab(ws, "sweep", str(plan), "--detach").stdout.strip()
    store = Store.open(ws / "stagelab.db")

    def trial_run(number: int):
        trials = queries.get_sweep(store, sweep_id).trials
        return trials[number].run_id if len(trials) > number and trials[number].run_id else None

    # 1. A trial's engine dies mid-stage: the sweep resumes it from its checkpoint.
    run0 = wait_for(lambda: trial_run(0), 300, "trial 0 to start")
    kill_mid_stage(ws, run0, 1)
    wait_for(lambda: queries.get_run(store, run0).resume_count >= 1, 60, "trial 0 resumed")

    # 2. The sweep process and the running trial's engine die together.
    run1 = wait_for(lambda: trial_run(1), 300, "trial 1 to start")
    engine_pid = pause_after_checkpoint(ws, run1, 1)
    os.kill(queries.get_sweep(store, sweep_id).pid, signal.SIGKILL)
    os.kill(engine_pid, signal.SIGKILL)
    wait_for(lambda: queries.get_sweep(store, sweep_id).status == "interrupted", 30, "interrupted")
    stagelab(ws, "sweep-resume", sweep_id)

    data = json.loads(stagelab(ws, "show", sweep_id, "--json").stdout)
    assert data["status"] == "finished"
    assert [t["status"] for t in data["trials"]] == ["finished"] * 3
    assert sorted(t["params"]["stages.cls.seed"] for t in data["trials"]) == [1, 2, 3]
    assert data["trials"][0]["run"] == run0 and data["trials"][1]["run"] == run1
    # Resumed mid-stage from a checkpoint, not started again.
    assert queries.get_run(store, run1).resume_count >= 1
    events = queries.list_events(store, run1, kind="resume")
    assert events and "step 0" not in events[-1].message
    assert all(t["reused_stages"] == ["mlm"] for t in data["trials"][1:])


@pytest.mark.slow
def test_parallel_trials_share_the_stages_before_the_space(tmp_path, data_dir):
    from engine.channel.client import ChannelClient
    from engine.store import Store, queries
    from tests.engine.process.test_runs import stagelab

    ws = tmp_path / "ws"
    plan = write_plan(
        data_dir,
        tmp_path,
        {
            "objective": OBJECTIVE,
            "budget": {"trials": 3},
            "sampler": "random",
            "pruner": {"kind": "none"},
            "space": {"stages.cls.optimizer.lr": {"log_uniform": [1e-4, 1e-2]}},
        },
    )
    sweep = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--workspace", str(ws)]
        + ["sweep", str(plan), "--parallel", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Trial 0 held in its cls stage (its mlm is in the cache by then) until another trial
    # has started: forked trials train 24 steps in about a second, and one could end
    # before the sweep's next look (every 0.5 s) started the other.
    first = first_run_id(ws)
    pause_after_checkpoint(ws, first, 1)
    store = Store.open(ws / "stagelab.db")
    wait_for(
        lambda: any(r.id != first and r.started_ms for r in queries.list_runs(store)),
        120,
        "a second trial to start",
    )
    held = ChannelClient.for_run(queries.get_run(store, first).run_dir, name="test")
    held.control("resume")
    held.close()
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err
    sweep_id = out.splitlines()[0]
    data = json.loads(stagelab(ws, "show", sweep_id, "--json").stdout)
    assert [t["status"] for t in data["trials"]] == ["finished"] * 3
    assert data["parallel"] == 2
    # The first trial trained mlm; the others waited for it and reused it.
    assert data["trials"][0]["reused_stages"] == []
    assert all(t["reused_stages"] == ["mlm"] for t in data["trials"][1:])
    runs = [queries.get_run(store, t["run"]) for t in data["trials"]]
    # Two trials ran at the same time.
    assert any(
        a.started_ms < b.ended_ms and b.started_ms < a.ended_ms
        for i, a in enumerate(runs)
        for b in runs[i + 1 :]
    )
