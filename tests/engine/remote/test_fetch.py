"""`stagelab fetch RUN[:STAGE]` through a real OpenSSH server on 127.0.0.1: a remote run's
stage outputs come home whole (sizes and sha256 checked), the stage row then names the
local copy and the placement says where each output lives."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.store import Store, Workspace, queries
from tests.engine.remote.conftest import add_target


def stagelab(workspace: Path, *args: str) -> int:
    return main(["--workspace", str(workspace), *args])


def remote_run(tmp_path: Path, sshd) -> tuple[Workspace, Store, str, Path]:
    """A run recorded here as trained on target 'box' (as the mirror leaves it: its stage
    rows name the target's folders), with two finished stages and one still running."""
    ws_root, remote_ws = tmp_path / "ws", tmp_path / "there" / "workspace"
    add_target(ws_root, "box", sshd.url, *sshd.target_args(tmp_path / "there", sys.executable))
    workspace = Workspace.open(ws_root)
    store = Store.open(workspace.db_path)
    exp = queries.create_experiment(store, "remote", "name: remote\n", str(tmp_path))
    placement = {"kind": "ssh", "host": "127.0.0.1", "remote_workspace": str(remote_ws)}
    placement["remote_python"] = sys.executable
    run_id = queries.create_run(
        store, exp, plan_text="name: remote\n", plan_dir=str(tmp_path), gpus="cpu",
        runs_dir=workspace.runs_dir, target="box", placement=placement,
    )  # fmt: skip
    for idx, (name, status) in enumerate(
        (("lm", "finished"), ("cls", "finished"), ("more", "running"))
    ):
        out = remote_ws / "runs" / run_id / "stages" / f"{idx}-{name}" / "output"
        (out / "member" / "deep").mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"stage": name}))
        (out / "model.safetensors").write_bytes(os.urandom(300_000 + idx))
        (out / "member" / "deep" / "a.txt").write_text("a" * idx)
        queries.upsert_stage(
            store, run_id, idx, name=name, kind="train", status=status,
            output_dir=str(out) if status == "finished" else None,
        )  # fmt: skip
    return workspace, store, run_id, remote_ws


def digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_fetch_brings_a_remote_runs_outputs_home_through_ssh(sshd, tmp_path, capsys):
    workspace, store, run_id, remote_ws = remote_run(tmp_path, sshd)
    ws = workspace.root
    assert stagelab(ws, "fetch", f"{run_id}:more") == 2
    assert "has no output yet (running)" in capsys.readouterr().err
    assert stagelab(ws, "fetch", f"{run_id}:cls", "--json") == 0
    said = json.loads(capsys.readouterr().out)
    local = workspace.run_dir(run_id) / "stages" / "1-cls" / "output"
    there = remote_ws / "runs" / run_id / "stages" / "1-cls" / "output"
    size = sum(p.stat().st_size for p in there.rglob("*") if p.is_file())
    assert said == [{"stage": "cls", "folder": str(local), "files": 3, "bytes": size, "sent": size}]
    assert digest(local) == digest(there) and len(digest(local)) == 3
    stages = {s.name: s for s in queries.list_stages(store, run_id)}
    assert stages["cls"].output_dir == str(local)  # predict, the Playground, the cache
    assert stages["lm"].output_dir.startswith(str(remote_ws))
    assert queries.get_run(store, run_id).placement["outputs"] == {"cls": "local"}
    # No leftovers beside the output.
    assert sorted(p.name for p in local.parent.iterdir()) == ["output"]

    # The whole run: only what is not here comes over; both are local after.
    assert stagelab(ws, "fetch", run_id, "--json") == 0
    sent = {r["stage"]: r["sent"] for r in json.loads(capsys.readouterr().out)}
    assert sent["cls"] == 0 and sent["lm"] > 300_000
    assert queries.get_run(store, run_id).placement["outputs"] == {"lm": "local", "cls": "local"}


def test_a_changed_file_or_a_gone_output_leaves_nothing_half_fetched(sshd, tmp_path, capsys):
    from engine.remote import fetch

    workspace, store, run_id, remote_ws = remote_run(tmp_path, sshd)
    there = remote_ws / "runs" / run_id / "stages" / "0-lm" / "output"
    real = fetch.manifest

    def stale(shell, python, folder):  # the file changes after it was listed
        listed = real(shell, python, folder)
        (there / "model.safetensors").write_bytes(b"changed")
        return listed

    fetch.manifest = stale
    try:
        with pytest.raises(fetch.FetchError, match="another sha256"):
            fetch.fetch_outputs(workspace, store, run_id, "lm")
    finally:
        fetch.manifest = real
    stage_dir = workspace.run_dir(run_id) / "stages" / "0-lm"
    assert not stage_dir.exists() or not any(stage_dir.iterdir())
    assert "outputs" not in queries.get_run(store, run_id).placement
    import shutil

    shutil.rmtree(there)
    assert stagelab(workspace.root, "fetch", f"{run_id}:lm") == 2
    assert "is no longer on target 'box'" in capsys.readouterr().err


def test_predict_on_a_remote_stage_fetches_its_output_first(sshd, tmp_path, capsys):
    workspace, store, run_id, remote_ws = remote_run(tmp_path, sshd)
    # The output here is no model (random bytes): predict fetches it, then says so.
    stagelab(workspace.root, "predict", f"{run_id}:lm", "--text", "hi")
    err = capsys.readouterr().err
    assert f"fetching stage 'lm' of run {run_id} from target 'box'" in err
    assert queries.get_run(store, run_id).placement["outputs"] == {"lm": "local"}
    (lm,) = [s for s in queries.list_stages(store, run_id) if s.name == "lm"]
    assert lm.output_dir == str(workspace.run_dir(run_id) / "stages" / "0-lm" / "output")
