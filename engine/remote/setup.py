"""Making a target ready: `stagelab target check` connects, finds the target's Python, and
uses its Stagelab if it is this version, else installs this install's Stagelab in the
workdir (docs/targets.md, "How Stagelab gets there"); then lists GPUs and disk.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import importlib.util
import json
import re
import shlex
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.remote.probe import PROBE, UNPACK
from engine.remote.shell import Shell, ShellError
from engine.remote.targets import Target

MIN_FREE = 1 << 30  # what a run needs in the workdir beyond its files
MIN_PYTHON = (3, 11)
# The window's packages: the engine on a target does without them.
WINDOW_ONLY = {"pyside6-essentials", "pyqtgraph"}
# The packages of the wheel: the engine and its shipped plans and data (not the window).
PACKAGES = ("engine", "stagelab_resources")


class SetupError(RuntimeError):
    """The target cannot run this Stagelab; one sentence that says what to do."""


def this_version() -> str:
    return md.version("stagelab")


def engine_dists() -> list[str]:
    """The distributions the engine imports (the package's requirements less the window's)."""
    names = []
    for req in md.requires("stagelab") or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[ ;<>=!~\[]", req, maxsplit=1)[0]
        if name.lower() not in WINDOW_ONLY:
            names.append(name)
    return names


def _package_files() -> list[tuple[str, Path]]:
    """(name in the wheel, file) of every file of the engine's packages as installed here
    (an editable checkout included, so uncommitted changes travel too)."""
    files = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SetupError(f"this install has no package '{package}'; reinstall Stagelab")
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files.append((f"{package}/{rel.as_posix()}", path))
    return files


def build_wheel(cache_dir: Path) -> tuple[Path, str]:
    """A wheel of this install's engine, built once per content into `cache_dir`; returns it
    and its build id (the first 12 hex digits of its files' sha256)."""
    files = _package_files()
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    build = digest.hexdigest()[:12]
    version = this_version()
    wheel = Path(cache_dir) / build / f"stagelab-{version}-py3-none-any.whl"
    if wheel.exists():
        return wheel, build
    wheel.parent.mkdir(parents=True, exist_ok=True)
    info = f"stagelab-{version}.dist-info"
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: stagelab\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stagelab\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    part = wheel.with_suffix(".part")
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
        entries = [(n, p.read_bytes()) for n, p in files]
        entries += [(n, text.encode()) for n, text in meta.items()]
        for name, data in entries:
            z.writestr(name, data)
            sha = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={sha},{len(data)}")
        z.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    part.replace(wheel)
    return wheel, build


@dataclass
class RemoteSide:
    """How to run this Stagelab on a target."""

    python: str
    workdir: str  # absolute, there
    pythonpath: str | None  # the installed wheel's folder, if Stagelab came from here
    version: str
    gpus: list[dict[str, Any]] = field(default_factory=list)
    disk_free: int = 0
    how: str = ""  # where its Stagelab comes from, in words

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": self.pythonpath} if self.pythonpath else {}

    def command(self, *args: str) -> str:
        """A sh command line running the target's Python with this Stagelab, in the workdir."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env().items())
        run = shlex.join([self.python, *args])
        return f"cd {shlex.quote(self.workdir)} && {env + ' ' if env else ''}{run}"


def size_text(n: float) -> str:
    """Bytes as people read them: GiB from 1 GiB, else MiB."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def disk_shortfall(
    name: str, workdir: str, free: int, sending: int, margin: int = MIN_FREE
) -> str | None:
    """The sentence when a target's free disk (the probe's `disk_free` in the workdir) is
    less than what will be sent there plus the room a run needs; None when it fits."""
    if free >= sending + margin:
        return None
    what = f"{size_text(sending)} of files to send and " if sending else ""
    return (
        f"target '{name}' has {size_text(free)} free in {workdir}, less than the "
        f"{what}{size_text(margin)} a run needs; nothing was sent: free some there or choose "
        "another --workdir"
    )


def probe(shell: Shell, target: Target, python: str, install: str) -> dict[str, Any]:
    """What the target has (see probe.PROBE). Raises ShellError, SetupError."""
    args = json.dumps({"workdir": target.workdir, "dists": engine_dists(), "install": install})
    done = shell.run([python, "-c", PROBE, args], timeout=120)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise SetupError(
            f"target '{target.name}' has no working Python at {python} "
            f"({said[-1] if said else 'exit ' + str(done.returncode)}); name one with --python"
        )
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def ready(
    shell: Shell,
    target: Target,
    cache_dir: Path,
    *,
    install: bool,
    need_free: int = MIN_FREE,
    say: Callable[[str], None] = lambda _: None,
) -> RemoteSide:
    """The target's Python with this Stagelab: its own if it has this version, else the
    wheel of this install unpacked in the workdir (done here if `install`, else refused).

    Raises:
        ShellError: unreachable, unknown host key, login refused.
        SetupError: no usable Python, missing dependencies, another version, no disk.
    """
    version = this_version()
    wheel, build = build_wheel(cache_dir)
    folder = f"stagelab-{version}-{build}"
    found = probe(shell, target, target.python, folder)
    if tuple(found["version"]) < MIN_PYTHON:
        have = ".".join(map(str, found["version"]))
        raise SetupError(
            f"target '{target.name}': {found['python']} is Python {have}; Stagelab needs "
            f"{'.'.join(map(str, MIN_PYTHON))} or newer (name one with --python)"
        )
    workdir = found["workdir"]
    side = RemoteSide(found["python"], workdir, None, version, found["gpus"], found["disk_free"])
    sending = 0 if found["installed"] or found["stagelab"] == version else wheel.stat().st_size
    short = disk_shortfall(target.name, workdir, found["disk_free"], sending, need_free)
    if short:
        raise SetupError(short)
    if found["stagelab"] == version:
        side.how = f"Stagelab {version} of {found['python']}"
        return side
    if found["missing"]:
        return _venv_side(shell, target, side, found, wheel, install, say)
    side.pythonpath = f"{workdir}/{folder}"
    side.how = f"Stagelab {version} from this install in {side.pythonpath}"
    if found["installed"]:
        return side
    if not install:
        other = f"Stagelab {found['stagelab']}" if found["stagelab"] else "no Stagelab"
        raise SetupError(
            f"target '{target.name}' has {other}, this is {version}; "
            f"run `stagelab target check {target.name}` to install this version there"
        )
    say(
        f"installing Stagelab {version} ({wheel.stat().st_size / 2**20:.1f} MiB) in {side.pythonpath}"
    )
    remote_wheel = f"{workdir}/tmp/{folder}.whl"
    shell.put(wheel, remote_wheel)
    done = shell.run([found["python"], "-c", UNPACK, remote_wheel, side.pythonpath], timeout=300)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise SetupError(
            f"installing Stagelab on target '{target.name}' failed "
            f"({said[-1] if said else 'exit ' + str(done.returncode)}); nothing was left there"
        )
    return side


def _venv_side(shell, target, side, found, wheel, install, say) -> RemoteSide:
    """A Python without the engine's dependencies: a venv in the workdir with them, pinned
    to this install's versions, and this Stagelab's wheel (needs a package index there)."""
    venv = f"{side.workdir}/venv-{side.version}"
    python = f"{venv}/bin/python"
    ok = shell.run([python, "-c", "import engine"], timeout=60).returncode == 0
    if not ok and not install:
        raise SetupError(
            f"target '{target.name}': {found['python']} lacks {', '.join(found['missing'])}; "
            f"run `stagelab target check {target.name}` to make a venv there, or name a Python "
            "that has them with --python"
        )
    if not ok:
        say(f"{found['python']} lacks {', '.join(found['missing'])}: making a venv in {venv}")
        pins = "\n".join(f"{d}=={md.version(d)}" for d in engine_dists()) + "\n"
        shell.put(wheel, f"{venv}.tmp/{wheel.name}")
        script = (
            'set -e; rm -rf "$2"; "$1" -m venv "$2"; printf %s "$4" > "$3/pins.txt"; '
            '"$2/bin/python" -m pip install -q -c "$3/pins.txt" "$3/$5"; rm -rf "$3"'
        )
        done = shell.run(
            ["sh", "-c", script, "venv", found["python"], venv, f"{venv}.tmp", pins, wheel.name],
            timeout=3600,
        )
        if done.returncode != 0:
            shell.run(["rm", "-rf", venv, f"{venv}.tmp"])
            said = done.stderr.decode(errors="replace").strip().splitlines()
            raise SetupError(
                f"making a venv on target '{target.name}' failed ({said[-1] if said else ''}); "
                f"install {', '.join(found['missing'])} there or name a Python with --python"
            )
    side.python, side.how = python, f"Stagelab {side.version} in the venv {venv}"
    return side


def gpu_lines(gpus: list[dict[str, Any]]) -> list[str]:
    if not gpus:
        return ["GPUs: none (runs train on the CPU)"]
    return [
        f"GPU {g['index']}: {g['name']}, {g['free'] / 2**30:.1f} of {g['total'] / 2**30:.1f} GiB free"
        for g in gpus
    ]


def check_target(
    shell: Shell, target: Target, cache_dir: Path, say: Callable[[str], None] = print
) -> RemoteSide:
    """`stagelab target check`: connect, make Stagelab ready, list GPUs and disk (said
    line by line). Raises ShellError or SetupError with one sentence."""
    say(f"target '{target.name}' ({target.url}): connecting to {target.where}")
    side = ready(shell, target, cache_dir, install=True, say=say)
    say(f"python: {side.python}")
    say(f"stagelab: {side.how}")
    for line in gpu_lines(side.gpus):
        say(line)
    say(f"disk: {side.disk_free / 2**30:.1f} GiB free in {side.workdir}")
    return side


__all__ = ["SetupError", "ShellError", "RemoteSide", "build_wheel", "check_target", "ready"]
