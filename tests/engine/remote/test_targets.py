"""Targets: stored by URL, and `stagelab target check` against a real OpenSSH server on
127.0.0.1 that installs this Stagelab in the target's workdir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.remote.targets import TargetError, make_target
from tests.engine.remote.conftest import add_target, free_port


def stagelab(workspace: Path, *args: str) -> int:
    return main(["--workspace", str(workspace), *args])


def test_targets_are_added_listed_and_removed_by_url(tmp_path, capsys):
    ws = tmp_path / "ws"
    add_target(
        ws,
        "box",
        "ssh://me@gpu.example:2222",
        "--workdir",
        "/scratch/me",
        "--ssh-option",
        "ProxyJump=gate",
    )
    add_target(
        ws, "cluster", "slurm+ssh://login.example", "--partition", "gpu", "--gpus-per-node", "4"
    )
    assert stagelab(ws, "target", "add", "box", "ssh://other") == 2
    assert "exists already" in capsys.readouterr().err
    assert stagelab(ws, "target", "ls", "--json") == 0
    import json

    listed = {t["name"]: t for t in json.loads(capsys.readouterr().out)}
    assert listed["box"]["ssh_options"] == ["ProxyJump=gate"]
    assert listed["box"]["workdir"] == "/scratch/me"
    assert listed["cluster"]["slurm"] == {"partition": "gpu", "gpus_per_node": 4}
    assert stagelab(ws, "target", "rm", "box") == 0
    assert stagelab(ws, "target", "rm", "box") == 2
    t = make_target("c", "slurm://")
    assert (t.kind, t.host, t.over_ssh) == ("slurm", None, False)
    for bad in ("http://x", "ssh://", "ssh://me:pw@box", "slurm://host"):
        with pytest.raises(TargetError):
            make_target("x", bad)
    with pytest.raises(TargetError, match="always checked"):
        make_target("x", "ssh://box", {"ssh_options": ["StrictHostKeyChecking=no"]})


def test_check_installs_this_stagelab_in_the_workdir_of_a_bare_python(
    sshd, bare_python, tmp_path, capsys
):
    ws, workdir = tmp_path / "ws", tmp_path / "remote"
    add_target(ws, "box", sshd.url, *sshd.target_args(workdir, bare_python))
    assert stagelab(ws, "target", "check", "box") == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert "installing Stagelab" in said and "GPUs: none" in said and "is ready" in said
    (installed,) = [p for p in workdir.iterdir() if p.name.startswith("stagelab-")]
    assert (installed / ".complete").exists() and (installed / "engine" / "__main__.py").exists()
    assert not list(workdir.rglob("*.part*")) and not list((workdir / "tmp").iterdir())
    # The target's Python imports the engine from there, with its own dependencies.
    found = subprocess.run(
        [
            bare_python,
            "-c",
            "import engine, importlib.metadata as m; print(engine.__file__, m.version('stagelab'))",
        ],
        env={"PYTHONPATH": str(installed)},
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert found.stdout.startswith(str(installed / "engine")), found
    # A second check finds it there and sends nothing.
    assert stagelab(ws, "target", "check", "box") == 0
    assert "installing" not in capsys.readouterr().out
    # Its outcome is kept, as the window's Check keeps it.
    assert stagelab(ws, "target", "ls", "--json") == 0
    import json

    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["last_check"]["ok"] is True and listed["last_check"]["python"] == bare_python


def test_a_target_without_this_stagelab_starts_nothing(sshd, bare_python, tmp_path, capsys):
    from engine.remote.setup import SetupError, ready
    from engine.remote.shell import shell_for

    target = make_target(
        "box",
        sshd.url,
        {
            "workdir": str(tmp_path / "remote"),
            "python": bare_python,
            "identity": str(sshd.identity),
            "ssh_options": [f"UserKnownHostsFile={sshd.known_hosts}", "BatchMode=yes"],
        },
    )
    with pytest.raises(SetupError, match="stagelab target check box"):
        ready(shell_for(target), target, tmp_path / "cache", install=False)
    assert not (tmp_path / "remote").exists()


def test_an_unknown_host_key_is_refused_with_how_to_trust_it(sshd, tmp_path, capsys):
    ws, workdir = tmp_path / "ws", tmp_path / "remote"
    # The known_hosts file names 127.0.0.1, not localhost: an unknown host to ssh.
    add_target(ws, "box", f"ssh://{sshd.user}@localhost:{sshd.port}", *sshd.target_args(workdir))
    assert stagelab(ws, "target", "check", "box") == 2
    err = capsys.readouterr().err
    assert "is not known" in err and f"ssh-keyscan -p {sshd.port} localhost" in err
    assert len(err.strip().splitlines()) == 1
    assert not workdir.exists()


def test_an_unreachable_target_is_one_sentence(sshd, tmp_path, capsys):
    ws = tmp_path / "ws"
    add_target(
        ws, "gone", f"ssh://{sshd.user}@127.0.0.1:{free_port()}", *sshd.target_args(tmp_path / "r")
    )
    assert stagelab(ws, "target", "check", "gone") == 2
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "Connection refused" in err
    assert len(err.strip().splitlines()) == 1
