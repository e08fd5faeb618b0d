"""Targets: the places a workspace's runs can train, by URL, stored in the workspace.

- `ssh://[user@]host[:port]`: a machine reached with the user's OpenSSH setup (a host alias
  of ~/.ssh/config works as the host);
- `slurm://`: this machine is a Slurm login node;
- `slurm+ssh://[user@]login-host[:port]`: a Slurm cluster's login node over SSH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from engine.store.db import Store
    from engine.store.records import TargetInfo

KINDS = ("ssh", "slurm", "slurm+ssh")
DEFAULT_WORKDIR = "~/.stagelab"
DEFAULT_PYTHON = "python3"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TargetError(ValueError):
    """A target that cannot be used as given; the message says what to do."""


@dataclass(frozen=True)
class Target:
    """A stored target with its URL parsed. `slurm` holds the Slurm settings (partition,
    nodes, gpus_per_node, cpus_per_task, time, account, qos, sbatch: extra lines)."""

    name: str
    url: str
    kind: str
    user: str | None = None
    host: str | None = None
    port: int | None = None
    workdir: str = DEFAULT_WORKDIR
    python: str = DEFAULT_PYTHON
    identity: str | None = None
    ssh_options: list[str] = field(default_factory=list)
    slurm: dict[str, Any] = field(default_factory=dict)

    @property
    def over_ssh(self) -> bool:
        """Commands reach the target through OpenSSH (else they run on this machine)."""
        return self.kind in ("ssh", "slurm+ssh")

    @property
    def where(self) -> str:
        """The host as people write it: user@host:port, or 'this machine'."""
        if not self.host:
            return "this machine"
        who = f"{self.user}@" if self.user else ""
        return f"{who}{self.host}" + (f":{self.port}" if self.port else "")

    def options(self) -> dict[str, Any]:
        """What the store keeps beside the URL (defaults left out)."""
        out: dict[str, Any] = {}
        if self.workdir != DEFAULT_WORKDIR:
            out["workdir"] = self.workdir
        if self.python != DEFAULT_PYTHON:
            out["python"] = self.python
        if self.identity:
            out["identity"] = self.identity
        if self.ssh_options:
            out["ssh_options"] = list(self.ssh_options)
        if self.slurm:
            out["slurm"] = dict(self.slurm)
        return out


def parse_url(url: str) -> tuple[str, str | None, str | None, int | None]:
    """(kind, user, host, port) of a target URL.

    Raises:
        TargetError: not one of the three forms.
    """
    forms = "ssh://[user@]host[:port], slurm:// or slurm+ssh://[user@]login-host[:port]"
    parts = urlsplit(url.strip())
    kind = parts.scheme.lower()
    if kind not in KINDS or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TargetError(f"'{url}' is not a target URL; write {forms}")
    try:
        port = parts.port
    except ValueError:
        raise TargetError(f"'{url}' has a port that is not a number; write {forms}") from None
    host, user = parts.hostname, parts.username
    if parts.password is not None:
        raise TargetError(
            "a target URL holds no password; SSH logs in with keys, the agent or a prompt"
        )
    if kind == "slurm":
        if host or user or port:
            raise TargetError(
                f"slurm:// runs on this machine and names no host ('{url}'); for a login node over SSH write slurm+ssh://host"
            )
        return kind, None, None, None
    if not host:
        raise TargetError(f"'{url}' names no host; write {forms}")
    return kind, user, host, port


def make_target(name: str, url: str, options: dict[str, Any] | None = None) -> Target:
    """A target from its name, URL and stored options (checked).

    Raises:
        TargetError: a bad name, URL or option.
    """
    if not _NAME.match(name):
        raise TargetError(
            f"'{name}' cannot name a target: use letters, digits, '.', '_' or '-' (up to 64)"
        )
    kind, user, host, port = parse_url(url)
    options = dict(options or {})
    ssh_options = [str(o) for o in options.get("ssh_options", [])]
    for option in ssh_options:
        key = option.split("=", 1)[0].strip().lower()
        if "=" not in option:
            raise TargetError(
                f"--ssh-option '{option}' is not KEY=VALUE (such as ServerAliveInterval=30)"
            )
        if key == "stricthostkeychecking":
            raise TargetError(
                "host keys are always checked; trust a new host as docs/targets.md says instead of StrictHostKeyChecking"
            )
    if options.get("slurm") and kind == "ssh":
        raise TargetError("Slurm settings need a slurm:// or slurm+ssh:// target")
    return Target(
        name=name,
        url=url.strip(),
        kind=kind,
        user=user,
        host=host,
        port=port,
        workdir=str(options.get("workdir") or DEFAULT_WORKDIR),
        python=str(options.get("python") or DEFAULT_PYTHON),
        identity=options.get("identity") or None,
        ssh_options=ssh_options,
        slurm=dict(options.get("slurm") or {}),
    )


def from_info(info: TargetInfo) -> Target:
    """The target of a stored row."""
    return make_target(info.name, info.url, info.options)


def add_target(store: Store, target: Target) -> Target:
    """Store a new target. Raises StoreError when the name is taken."""
    from engine.store import queries

    queries.add_target(store, target.name, target.url, target.options())
    return target


def get_target(store: Store, name: str) -> Target:
    """A stored target. Raises NotFound."""
    from engine.store import queries

    return from_info(queries.get_target(store, name))


def list_targets(store: Store) -> list[Target]:
    """Every stored target, by name."""
    from engine.store import queries

    return [from_info(info) for info in queries.list_targets(store)]
