"""Sending a plan's files to a real OpenSSH server on 127.0.0.1: an unchanged file is not
hashed again (the workspace's cache by path, size and mtime), an edited one is sent again;
a target without the disk for a run is refused in one sentence before anything is sent,
on a real small file system (a tmpfs mounted as the target's workdir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.remote.setup import MIN_FREE, disk_shortfall, probe
from engine.remote.shell import shell_for
from engine.remote.sync import HashCache, sync_plan
from engine.remote.targets import make_target
from engine.store import Store, queries
from tests.engine.remote.conftest import add_target

PLAN = """\
version: 1
name: files
stages:
  - name: cls
    kind: train
    task: sequence_classification
    model: {builtin: bert-tiny}
    data: {path: big.csv}
    max_steps: 2
"""
OLD = 1_600_000_000 * 10**9  # an mtime well in the past (a file edited long ago)


def target_of(sshd, workdir: Path):
    return make_target(
        "box",
        sshd.url,
        {
            "workdir": str(workdir),
            "python": sys.executable,
            "identity": str(sshd.identity),
            "ssh_options": [f"UserKnownHostsFile={sshd.known_hosts}", "BatchMode=yes"],
        },
    )


def test_an_unchanged_file_is_not_hashed_again_and_an_edited_one_is_sent_again(sshd, tmp_path):
    plan_dir, workdir = tmp_path / "plan", tmp_path / "remote"
    plan_dir.mkdir()
    data = plan_dir / "big.csv"
    data.write_text("text,label\n" + "a b c,1\n" * 1000)
    os.utime(data, ns=(OLD, OLD))
    shell = shell_for(target_of(sshd, workdir))
    cache_file = tmp_path / "ws" / "cache" / "file-sha256.json"

    def sync():
        hashes = HashCache(cache_file)
        synced = sync_plan(shell, sys.executable, str(workdir), PLAN, plan_dir, hashes=hashes)
        return synced, hashes.hashed

    first, hashed = sync()
    assert (first.sent_bytes, hashed) == (data.stat().st_size, 1)
    entry = json.loads(cache_file.read_text())[str(data)]
    assert entry[:2] == [data.stat().st_size, OLD]
    # Unchanged (same size and mtime): not read again, nothing sent.
    again, hashed = sync()
    assert (again.sent_bytes, hashed) == (0, 0) and again.copies == first.copies
    # Edited (same size, a later mtime): hashed and sent again, under its new sha256.
    data.write_text("text,label\n" + "x y z,0\n" * 1000)
    os.utime(data, ns=(OLD + 10**9, OLD + 10**9))
    edited, hashed = sync()
    assert (edited.sent_bytes, hashed) == (data.stat().st_size, 1)
    (copy,) = edited.copies.values()
    assert copy != next(iter(first.copies.values()))
    assert Path(copy).read_text() == data.read_text()
    # A file written just now is hashed every time until it is older (its mtime tick could
    # hold another edit unseen).
    data.write_text("text,label\n" + "q r s,1\n" * 1000)
    assert sync()[1] == 1 and sync()[1] == 1


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of `size` at a fresh folder; unmounted after the test."""
    mounted = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk-{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"a tmpfs cannot be mounted here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_target_without_the_disk_is_one_sentence_and_nothing_is_sent(
    sshd, tmp_path, capsys, small_disk
):
    ws = tmp_path / "ws"
    # The decision on the probe's real answer for a workdir that exists (this disk).
    found = probe(
        shell_for(target_of(sshd, tmp_path)), target_of(sshd, tmp_path), sys.executable, "x"
    )
    assert found["disk_free"] > 0
    assert disk_shortfall("box", "wd", found["disk_free"], 0, margin=0) is None
    said = disk_shortfall("box", "wd", found["disk_free"], found["disk_free"])
    assert said and "free in wd" in said and "to send" in said

    # `target check` on a 16 MiB disk: less than a run's room.
    tiny = small_disk("16m")
    add_target(ws, "tiny", sshd.url, *sshd.target_args(tiny / "wd", sys.executable))
    assert main(["--workspace", str(ws), "target", "check", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "target 'tiny' has 16.0 MiB free in" in err and "1.0 GiB a run needs" in err
    assert list(tiny.iterdir()) == []

    # `run --target` on a disk with a run's room but not the plan's 200 MiB file as well.
    roomy = small_disk(f"{MIN_FREE // 2**20 + 100}m")
    add_target(ws, "roomy", sshd.url, *sshd.target_args(roomy / "wd", sys.executable))
    plan_dir = tmp_path / "plan"
    plan_dir.mkdir()
    (plan_dir / "plan.yaml").write_text(PLAN)
    with open(plan_dir / "big.csv", "wb") as fh:  # sparse: no disk here
        fh.write(b"text,label\n")
        fh.truncate(200 * 2**20)
    args = ["--workspace", str(ws), "run", str(plan_dir / "plan.yaml"), "--target", "roomy"]
    assert main([*args, "--detach"]) == 2
    err = capsys.readouterr().err
    assert "nothing was started" in err
    assert "200.0 MiB of files to send and 1.0 GiB a run needs; nothing was sent" in err
    assert list(roomy.iterdir()) == []
    assert queries.list_runs(Store.open(ws / "stagelab.db")) == []
