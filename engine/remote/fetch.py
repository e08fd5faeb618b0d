"""`stagelab fetch RUN[:STAGE]`: bring a remote run's stage outputs home.

Outputs stay on the target while the run trains there. Fetching lists a stage's output
there (every file's size and sha256, computed by the target's Python), streams each file
through the target's shell (the OpenSSH connection the run uses), checks size and sha256
here and moves the folder into place whole: `runs/<id>/stages/<idx>-<name>/output`, where
a local run keeps it. The stage row then names the local folder (so `predict`, the
Playground and the stage cache use it) and the run's placement says where each output
lives: `outputs: {stage: "local" | "target"}`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.remote.shell import CHUNK, LocalShell, Shell, ShellError, SshShell, ssh_failure
from engine.store.status import STAGE_DONE

if TYPE_CHECKING:
    from engine.store.db import Store
    from engine.store.records import RunInfo, StageInfo
    from engine.store.workspace import Workspace

Progress = Callable[[int, int], None]  # bytes received so far, bytes in all

# argv[1]: a folder there. Prints JSON: [[relative path, size, sha256], …], or null when
# the folder is not there.
MANIFEST = r"""
import hashlib, json, os, sys
root = os.path.expanduser(sys.argv[1])
if not os.path.isdir(root):
    print("null"); sys.exit(0)
out = []
for d, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for b in iter(lambda: fh.read(1 << 20), b""):
                h.update(b)
        out.append([os.path.relpath(p, root).replace(os.sep, "/"), os.path.getsize(p), h.hexdigest()])
print(json.dumps(out))
"""


class FetchError(RuntimeError):
    """An output cannot be fetched; one sentence that says what to do."""


@dataclass(frozen=True)
class Fetched:
    """One stage's output brought home (or found here already, `sent` 0)."""

    stage: str
    folder: Path
    files: int
    size: int
    sent: int


def local_output(workspace: Workspace, run_id: str, stage: StageInfo) -> Path:
    """Where a local run keeps the stage's output."""
    return workspace.run_dir(run_id) / "stages" / f"{stage.idx}-{stage.name}" / "output"


def remote_output(workspace: Workspace, run: RunInfo, stage: StageInfo) -> str:
    """The stage's output folder on the target: the mirrored row's, unless that names the
    local copy already; then where the target's workspace keeps it."""
    if stage.output_dir and not Path(stage.output_dir).is_relative_to(workspace.runs_dir):
        return stage.output_dir
    placement = run.placement or {}
    remote_id = placement.get("remote_run_id") or run.id
    return (
        f"{placement['remote_workspace']}/runs/{remote_id}/stages/{stage.idx}-{stage.name}/output"
    )


def output_places(workspace: Workspace, run: RunInfo, stages: list[StageInfo]) -> dict[str, str]:
    """Stage name → "local" or "target" for every stage with an output; a local run's are
    all local. A fetched copy that was deleted here counts as on the target again."""
    said = (run.placement or {}).get("outputs") or {}
    places = {}
    for stage in stages:
        if stage.status not in STAGE_DONE or not stage.output_dir:
            continue
        if not is_remote(run):
            places[stage.name] = "local"
        else:
            here = local_output(workspace, run.id, stage).is_dir()
            places[stage.name] = "local" if said.get(stage.name) == "local" and here else "target"
    return places


def is_remote(run: RunInfo) -> bool:
    """Whether the run trained on a target (its outputs are there)."""
    return bool(run.target) and bool((run.placement or {}).get("remote_workspace"))


def manifest(shell: Shell, python: str, folder: str) -> list[tuple[str, int, str]] | None:
    """(path, size, sha256) of every file of a folder on the target; None if it is not
    there. Raises ShellError."""
    done = shell.run([python, "-c", MANIFEST, folder], timeout=600)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise ShellError(
            f"listing {folder} on the target failed ({said[-1] if said else done.returncode})"
        )
    found = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return None if found is None else [(str(p), int(n), str(h)) for p, n, h in found]


def local_manifest(folder: Path) -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
        out.append((path.relative_to(folder).as_posix(), path.stat().st_size, digest.hexdigest()))
    return sorted(out)


def _open_stream(shell: Shell, remote: str) -> subprocess.Popen:
    """A process whose stdout is the bytes of a file on the target."""
    if isinstance(shell, SshShell):
        cmd = [*shell.base(), "--", str(shell.target.host), shlex.join(["cat", "--", remote])]
    elif isinstance(shell, LocalShell):
        cmd = ["cat", "--", os.path.expanduser(remote)]
    else:
        raise FetchError(f"fetching through {type(shell).__name__} is not supported")
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def receive(shell: Shell, remote: str, local: Path, size: int, sha256: str, on_bytes) -> None:
    """Copy one file from the target to `local`, checking its size and sha256.

    Raises:
        ShellError: the connection failed.
        FetchError: the bytes that arrived are not the file that was listed.
    """
    local.parent.mkdir(parents=True, exist_ok=True)
    proc = _open_stream(shell, remote)
    digest, got = hashlib.sha256(), 0
    try:
        with open(local, "wb") as out:
            while block := proc.stdout.read(CHUNK):
                out.write(block)
                digest.update(block)
                got += len(block)
                on_bytes(len(block))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    err = proc.stderr.read().decode(errors="replace")
    code = proc.wait()
    if code == 255 and isinstance(shell, SshShell):
        raise ShellError(ssh_failure(shell.target, err))
    if code != 0:
        raise FetchError(f"reading {remote} on the target failed: {err.strip()[-300:]}")
    if got != size or digest.hexdigest() != sha256:
        raise FetchError(
            f"{remote} arrived as {got} bytes with another sha256 than the {size} listed "
            "(it changed while being fetched?); fetch again"
        )


def fetch_outputs(
    workspace: Workspace,
    store: Store,
    run_ref: str,
    stage_name: str | None = None,
    *,
    shell: Shell | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> list[Fetched]:
    """Fetch the output of one stage (by name) or of every finished stage of a remote run.

    Raises:
        FetchError, ShellError: one sentence; nothing half-copied is left here.
        queries.NotFound: no such run.
    """
    from engine.remote.targets import get_target
    from engine.store import queries

    run = queries.get_run(store, run_ref)
    stages = queries.list_stages(store, run.id)
    chosen = _chosen_stages(run, stages, stage_name)
    if not is_remote(run):
        where = ", ".join(s.output_dir or "" for s in chosen)
        raise FetchError(f"run {run.id} trained on this machine; its outputs are here: {where}")
    if shell is None:
        from engine.remote.shell import shell_for

        try:
            target = get_target(store, run.target)
        except queries.NotFound:
            raise FetchError(
                f"run {run.id} trained on target '{run.target}', which is no longer stored; "
                f"add it again with `stagelab target add {run.target} URL`"
            ) from None
        shell = shell_for(target)
        python = (run.placement or {}).get("remote_python") or target.python
    else:
        python = (run.placement or {}).get("remote_python") or "python3"
    plans = []
    for stage in chosen:
        remote = remote_output(workspace, run, stage)
        files = manifest(shell, python, remote)
        if files is None:
            raise FetchError(
                f"the output of stage '{stage.name}' is no longer on target '{run.target}' "
                f"({remote}); it cannot be fetched"
            )
        plans.append((stage, remote, files))
    total = sum(n for _, _, files in plans for _, n, _ in files)
    done = [0]

    def on_bytes(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    fetched = []
    for stage, remote, files in plans:
        fetched.append(
            _fetch_stage(workspace, store, run, stage, shell, (remote, files), on_bytes, say)
        )
    places = dict((run.placement or {}).get("outputs") or {})
    places.update({f.stage: "local" for f in fetched})
    queries.set_placement(store, run.id, outputs=places)
    return fetched


def _chosen_stages(run: RunInfo, stages: list[StageInfo], name: str | None) -> list[StageInfo]:
    if name:
        named = [s for s in stages if s.name == name]
        if not named:
            names = ", ".join(s.name for s in stages) or "none"
            raise FetchError(f"run {run.id} has no stage '{name}' (its stages: {names})")
        if named[0].status not in STAGE_DONE or not named[0].output_dir:
            raise FetchError(
                f"stage '{name}' of run {run.id} has no output yet ({named[0].status}); "
                "fetch a finished stage"
            )
        return named
    done = [s for s in stages if s.status in STAGE_DONE and s.output_dir]
    if not done:
        raise FetchError(f"run {run.id} has no finished stage yet; fetch once one has finished")
    return done


def _fetch_stage(workspace, store, run, stage, shell, listed, on_bytes, say) -> Fetched:
    """One stage's output into a part folder beside its place, moved in when whole."""
    from engine.store import queries

    remote, files = listed
    dest = local_output(workspace, run.id, stage)
    size = sum(n for _, n, _ in files)
    if dest.is_dir() and local_manifest(dest) == sorted(files):
        on_bytes(size)
        say(f"{stage.name}: here already ({len(files)} files, {size / 2**20:.1f} MiB) in {dest}")
        sent = 0
    else:
        part = dest.with_name(f"output.part.{os.getpid()}")
        shutil.rmtree(part, ignore_errors=True)
        try:
            for rel, n, sha in files:
                if rel.startswith("/") or ".." in rel.split("/"):
                    raise FetchError(f"the target listed a path outside the output: {rel}")
                receive(shell, f"{remote}/{rel}", part / rel, n, sha, on_bytes)
            part.mkdir(parents=True, exist_ok=True)  # an empty output is a folder too
            if dest.exists():
                shutil.rmtree(dest)
            part.replace(dest)
        finally:
            shutil.rmtree(part, ignore_errors=True)
        say(f"{stage.name}: {len(files)} files, {size / 2**20:.1f} MiB, sha256 checked, in {dest}")
        sent = size
    queries.upsert_stage(store, run.id, stage.idx, output_dir=str(dest))
    return Fetched(stage.name, dest, len(files), size, sent)
