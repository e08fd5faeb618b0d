"""Fixtures of the remote-target tests: a real OpenSSH server on 127.0.0.1 with its own
config, port, throwaway host and user keys, and a known_hosts file naming it.

A missing sshd (or not running as root) skips these tests with the reason, except where
STAGELAB_REQUIRE_REMOTE=1 (.ci/run sets it): then they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.remote.mirror_checks import processes_with

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def need(condition: bool, reason: str) -> None:
    """Skip (or fail where the remote parts are required) when `condition` is false."""
    if condition:
        return
    if os.environ.get("STAGELAB_REQUIRE_REMOTE") == "1":
        pytest.fail(f"{reason} (STAGELAB_REQUIRE_REMOTE=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Sshd:
    """A running sshd: where it listens and the files a client needs to log in."""

    port: int
    user: str
    identity: Path  # the user's private key
    known_hosts: Path  # `[127.0.0.1]:PORT <host key>`
    host_key_pub: Path
    root: Path
    servers: Path  # where the target keeps its engine servers (engine/launch/kept_server.py)

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def target_args(self, workdir: Path, python: str | None = None) -> list[str]:
        """`stagelab target add NAME URL` options that reach this server non-interactively."""
        args = [
            "--workdir",
            str(workdir),
            "--identity",
            str(self.identity),
            "--ssh-option",
            f"UserKnownHostsFile={self.known_hosts}",
            "--ssh-option",
            "BatchMode=yes",
        ]
        return args + (["--python", python] if python else [])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stagelab-test", "-f", str(path)],
        check=True,
    )


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """OpenSSH's server on 127.0.0.1 for the session, logging in as this user by key."""
    need(
        Path(SSHD).exists() and shutil.which("ssh") is not None,
        "OpenSSH (sshd, ssh) is not installed",
    )
    need(os.geteuid() == 0, "sshd needs root to log users in")
    root = tmp_path_factory.mktemp("sshd")
    host_key, user_key = root / "host_ed25519", root / "user_ed25519"
    _keygen(host_key)
    _keygen(user_key)
    authorized = root / "authorized_keys"
    authorized.write_text(Path(f"{user_key}.pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    # The session's OpenMP threads (tests/conftest.py) for the target's engines; the
    # server the target's agent keeps (engine/launch/kept_server.py) in this session's
    # folder, ended with it, or none when the session runs without one.
    servers = tmp_path_factory.getbasetemp() / "target-servers"  # one for every sshd here
    target_env = {"STAGELAB_SERVER_DIR": str(servers)}
    if os.environ.get("OMP_NUM_THREADS"):
        target_env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
    if os.environ.get("STAGELAB_TEST_ENGINE_SERVER", "1") == "0":
        target_env["STAGELAB_ENGINE_SERVER"] = "0"
    config = root / "sshd_config"
    # sshd re-executes itself with -f: the path must be absolute.
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {root / 'sshd.pid'}",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "AllowStreamLocalForwarding yes",
                "MaxSessions 50",
                # A slurm+ssh:// target's client passes the test cluster's config
                # (SetEnv=SLURM_CONF=…); a real login node has /etc/slurm/slurm.conf.
                "AcceptEnv SLURM_CONF",
                "SetEnv " + " ".join(f"{k}={v}" for k, v in target_env.items()),
                "MaxStartups 50",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # its privilege-separation dir
    log = root / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config.resolve())], stderr=open(log, "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"sshd did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    host_pub = Path(f"{host_key}.pub")
    known_hosts = root / "known_hosts"
    key_type, key = host_pub.read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    user = os.environ.get("USER") or "root"
    yield Sshd(port, user, user_key, known_hosts, host_pub, root, servers)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    for pid in processes_with(str(servers)):  # kept servers and their engines
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python with Stagelab's dependencies but not Stagelab: a venv whose site-packages
    names this venv's in a .pth line (.pth files inside that folder are not read, so the
    editable Stagelab is not importable there)."""
    import sys
    import sysconfig

    root = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "stagelab_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = "import importlib.util as u; print(u.find_spec('engine') is None, u.find_spec('torch') is not None)"
    found = subprocess.run([str(python), "-c", probe], cwd=root, capture_output=True, text=True)
    assert found.stdout.split() == ["True", "True"], found
    return str(python)


def add_target(workspace: Path, name: str, url: str, *args: str) -> None:
    """`stagelab target add` in this process (the CLI imports no torch)."""
    from engine.cli.main import main

    assert main(["--workspace", str(workspace), "target", "add", name, url, *args]) == 0
