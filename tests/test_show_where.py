"""`stagelab show` says where and how every run trained (issue 30): this machine with its
host, processes and GPUs (a `--nproc 2` run says 2 processes), or a target with its kind,
host, nodes and Slurm job."""

from __future__ import annotations

import json
import socket

from engine.cli.main import main
from engine.launch.runs import record_run
from engine.store import Store, Workspace, queries


def show(ws, run_id, capsys, *extra) -> str:
    assert main(["--workspace", str(ws.root), "show", run_id, *extra]) == 0
    return capsys.readouterr().out


def test_show_says_where_a_run_trains(tmp_path, capsys):
    ws = Workspace.open(tmp_path / "ws")
    store = Store.open(ws.db_path)
    here = record_run(
        ws, store, name="p", plan_text="", plan_dir=str(tmp_path), gpus="cpu", nproc=2
    )
    where = json.loads(show(ws, here, capsys, "--json"))["where"]
    host = socket.gethostname()
    assert where == {
        "target": None,
        "kind": "local",
        "host": host,
        "processes": 2,
        "nodes": 1,
        "gpus": "cpu",
        "remote_workspace": None,
        "slurm": None,
    }
    assert f"  on this machine ({host}), 2 processes, CPU" in show(ws, here, capsys)

    exp = queries.get_run(store, here).experiment_id
    placement = {
        "kind": "slurm",
        "host": "login1",
        "nodes": 2,
        "gpus": "0,1",
        "remote_workspace": "/scratch/me/.stagelab/workspace",
        "slurm": {"job_id": "4242", "partition": "gpu", "node_list": "n[1-2]", "reason": "None"},
    }
    there = queries.create_run(
        store, exp, plan_text="", plan_dir="", gpus="0,1", runs_dir=ws.runs_dir, nproc=2,
        target="cluster", placement=placement,
    )  # fmt: skip
    data = json.loads(show(ws, there, capsys, "--json"))["where"]
    assert data["target"] == "cluster" and data["kind"] == "slurm"
    assert (data["nodes"], data["processes"], data["slurm"]["job_id"]) == (2, 2, "4242")
    lines = show(ws, there, capsys).splitlines()
    assert "  on target 'cluster' (slurm, login1), 2 nodes × 2 processes, GPUs 0,1" in lines
    assert "  Slurm job 4242 in partition gpu on n[1-2]" in lines
    queries.set_placement(store, there, slurm={"job_id": "4242", "reason": "Priority"})
    assert "  Slurm job 4242 (Priority)" in show(ws, there, capsys).splitlines()
