"""Sending a plan's files to a target, content-addressed: each file once as
`WORKDIR/blobs/<sha256>/<name>`, a folder (a model or tokenizer folder, a folder of split
files) as `WORKDIR/trees/<sha256 of its manifest>/<name>/…` made of links to its blobs.
Only what the target lacks is sent; the plan text the target runs names its copies.

A file's sha256 is kept in the workspace by (path, size, mtime_ns) (`HashCache`), so a
large unchanged file is not read again at every run; an edited file has another mtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.remote.setup import SetupError, disk_shortfall
from engine.remote.shell import Shell, ShellError

Progress = Callable[[int, int], None]  # bytes sent, bytes to send

# argv[1]: JSON {blobs: [path], trees: {path: [[rel, blob]]}}. With argv[2] == "build",
# makes the trees (links to blobs, renamed into place whole); prints what is missing.
SYNC = r"""
import json, os, shutil, sys
a = json.loads(sys.argv[1])
if sys.argv[2:] == ["build"]:
    for tree, files in a["trees"].items():
        if os.path.isdir(tree):
            continue
        part = tree + ".part.%d" % os.getpid()
        try:
            for rel, blob in files:
                dest = os.path.join(part, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                try:
                    os.link(blob, dest)
                except OSError:
                    shutil.copyfile(blob, dest)
            os.makedirs(part, exist_ok=True)
            os.makedirs(os.path.dirname(tree), exist_ok=True)
            os.rename(part, tree)
        finally:
            shutil.rmtree(part, ignore_errors=True)
print(json.dumps({"blobs": [b for b in a["blobs"] if not os.path.isfile(b)],
                  "trees": [t for t in a["trees"] if not os.path.isdir(t)]}))
"""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """The sha256 of local files by (path, size, mtime_ns), kept in a JSON file.

    A file changed within RACY_S of its hashing could change again within the same mtime
    tick unseen, so it is not kept until it is older (as git treats "racily clean" files).
    """

    RACY_S = 2.0

    def __init__(self, path: Path | None = None):
        self.path, self.entries, self.hashed = path, {}, 0
        if path is not None:
            try:
                self.entries = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}
        self._dirty = False

    def sha256(self, file: Path) -> str:
        st = file.stat()
        key = str(file)
        entry = self.entries.get(key)
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return entry[2]
        sha = sha256_of(file)
        self.hashed += 1
        if time.time_ns() - st.st_mtime_ns > self.RACY_S * 1e9:
            self.entries[key] = [st.st_size, st.st_mtime_ns, sha]
            self._dirty = True
        return sha

    def save(self) -> None:
        """Write the cache whole (a run syncing beside us loses at most its entries)."""
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        part = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        part.write_text(json.dumps(self.entries), encoding="utf-8")
        part.replace(self.path)
        self._dirty = False


def path_fields(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The dicts of plan data that name a local file or folder with `path` (data, model,
    teacher, joint members' data and models, ensemble members)."""
    found = []
    stages = data.get("stages") if isinstance(data, dict) else None
    for stage in stages if isinstance(stages, list) else []:
        if not isinstance(stage, dict):
            continue
        holders = [stage.get(f) for f in ("data", "model", "teacher")]
        for member in stage.get("members") or []:
            if isinstance(member, dict):
                holders += [member, member.get("data"), member.get("model")]
        found += [h for h in holders if isinstance(h, dict) and isinstance(h.get("path"), str)]
    return found


@dataclass
class Synced:
    """What a sync did: the plan text the target runs, and the local -> target paths."""

    plan_text: str
    copies: dict[str, str] = field(default_factory=dict)
    sent_bytes: int = 0
    total_bytes: int = 0


def sync_plan(
    shell: Shell,
    python: str,
    workdir: str,
    plan_text: str,
    plan_dir: Path,
    progress: Progress | None = None,
    *,
    hashes: HashCache | None = None,
    disk_free: int | None = None,
    target_name: str | None = None,
) -> Synced:
    """Send what the target lacks of the plan's files and return the plan text naming the
    target's copies (absolute paths there). With `disk_free` (the probe's, in the workdir),
    nothing is sent when what is missing there and a run's room do not fit.

    Raises:
        ShellError: the target cannot be reached or a copy failed.
        SetupError: the target lacks the disk for the files.
    """
    hashes = hashes or HashCache()
    data = yaml.safe_load(plan_text)
    blobs: dict[str, Path] = {}  # remote blob path -> local file
    trees: dict[str, list[list[str]]] = {}
    copies: dict[str, str] = {}
    for holder in path_fields(data):
        local = Path(holder["path"]).expanduser()
        local = (local if local.is_absolute() else Path(plan_dir) / local).resolve()
        if str(local) not in copies:
            copies[str(local)] = _place(local, workdir, blobs, trees, hashes)
        holder["path"] = copies[str(local)]
    hashes.save()
    request = {"blobs": sorted(blobs), "trees": trees}
    missing = _ask(shell, python, request)
    sizes = {b: blobs[b].stat().st_size for b in missing["blobs"]}
    total, sent = sum(sizes.values()), 0
    if disk_free is not None:
        short = disk_shortfall(target_name or shell.name, workdir, disk_free, total)
        if short:
            raise SetupError(short)
    for blob in missing["blobs"]:
        shell.put(
            blobs[blob],
            blob,
            (lambda n, base=sent: progress(base + n, total)) if progress else None,
        )
        sent += sizes[blob]
    if missing["trees"]:
        left = _ask(
            shell,
            python,
            {"blobs": [], "trees": {t: trees[t] for t in missing["trees"]}},
            build=True,
        )
        if left["trees"]:
            raise ShellError(
                f"folders could not be made on {shell.name}: {', '.join(left['trees'])}"
            )
    if progress:
        progress(sent, total)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return Synced(text, copies, sent, total)


def _place(
    local: Path, workdir: str, blobs: dict[str, Path], trees: dict, hashes: HashCache
) -> str:
    """The target's path of a local file or folder (registering its blobs)."""
    if local.is_file():
        blob = f"{workdir}/blobs/{hashes.sha256(local)}/{local.name}"
        blobs[blob] = local
        return blob
    files, listed = [], []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        sha, rel = hashes.sha256(path), path.relative_to(local).as_posix()
        blob = f"{workdir}/blobs/{sha}/{path.name}"
        blobs[blob] = path
        files.append([rel, blob])
        listed.append([rel, sha])
    manifest = hashlib.sha256(json.dumps(listed).encode()).hexdigest()
    tree = f"{workdir}/trees/{manifest}/{local.name}"
    trees[tree] = files
    return tree


def _ask(shell: Shell, python: str, request: dict[str, Any], build: bool = False) -> dict:
    argv = [python, "-c", SYNC, json.dumps(request)] + (["build"] if build else [])
    done = shell.run(argv, timeout=600)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise ShellError(f"looking up files on {shell.name} failed: {said[-1] if said else ''}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])
