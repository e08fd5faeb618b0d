"""A real one-node Slurm cluster on 127.0.0.1 for the session: its own munge daemon (key and
socket in a temporary folder), slurmctld and slurmd with a slurm.conf there, free ports,
a partition `debug` of this host with 2 CPUs. Clients reach it with SLURM_CONF in their
environment (`cluster.env`). Import the fixture into a test module:
`from tests.engine.remote.slurm_fixtures import slurm_cluster  # noqa: F401`.

Missing Slurm or munge binaries (or not running as root) skip the tests with the reason,
except where STAGELAB_REQUIRE_REMOTE=1 (.ci/run sets it): then they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.remote.conftest import free_port, need

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin"):
        if Path(folder, name).exists():
            return str(Path(folder, name))
    return None


@dataclass(frozen=True)
class SlurmCluster:
    """A running one-node cluster: its config and what clients need."""

    root: Path
    conf: Path
    node: str

    @property
    def env(self) -> dict[str, str]:
        """This process's environment with the cluster's SLURM_CONF."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def logs(self) -> str:
        """The daemons' last words, for a failing test's message."""
        out = []
        for name in ("slurmctld.log", "slurmd.log", "munged.log"):
            path = self.root / name
            if path.exists():
                out.append(f"--- {name}\n{path.read_text(errors='replace')[-1500:]}")
        return "\n".join(out)


def _config(root: Path, node: str, ctld_port: int, slurmd_port: int) -> str:
    return "\n".join(
        [
            "ClusterName=stagelab",
            f"SlurmctldHost={node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={root / 'munge.socket'}",
            "CredType=cred/munge",
            # What works in containers and VMs without cgroup delegation.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=30",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            f"NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN",
            f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """munged, slurmctld and slurmd on 127.0.0.1 for the session; every job is cancelled
    and the daemons stopped at its end."""
    missing = [b for b in BINARIES if _binary(b) is None]
    need(not missing, f"Slurm or munge is not installed ({', '.join(missing)} missing)")
    need(os.geteuid() == 0, "the one-node Slurm cluster runs its daemons as root")
    root = tmp_path_factory.mktemp("slurm")
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    node = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_config(root, node, free_port(), free_port()))
    procs: list[subprocess.Popen] = []
    devnull = subprocess.DEVNULL
    try:
        munge = [_binary("munged"), "-F", "--force", f"--socket={root / 'munge.socket'}"]
        munge += [f"--key-file={key}", f"--pid-file={root / 'munged.pid'}"]
        munge += [f"--log-file={root / 'munged.log'}", f"--seed-file={root / 'munged.seed'}"]
        procs.append(subprocess.Popen(munge, stdout=devnull, stderr=devnull))
        _wait(lambda: (root / "munge.socket").exists(), procs, "munged", root)
        for daemon in ("slurmctld", "slurmd"):
            argv = [_binary(daemon), "-D", "-f", str(conf)]
            argv += ["-N", node] if daemon == "slurmd" else []
            procs.append(subprocess.Popen(argv, stdout=devnull, stderr=devnull))
        cluster = SlurmCluster(root, conf, node)
        _wait(lambda: _idle(cluster), procs, "the Slurm node", root)
    except BaseException:
        _stop(procs)
        raise
    yield cluster
    cluster.run("scancel", "--user", "root", check=False)  # this cluster's jobs only
    deadline = time.monotonic() + 40
    while cluster.run("squeue", "-h", check=False).stdout.strip():
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    _stop(procs)


def _idle(cluster: SlurmCluster) -> bool:
    proc = cluster.run("sinfo", "-h", "-o", "%t", check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "idle"


def _wait(ready, procs: list[subprocess.Popen], what: str, root: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        dead = [p.args[0] for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = SlurmCluster(root, root / "slurm.conf", "").logs()
            pytest.fail(f"{what} did not start ({', '.join(dead) or 'timeout'}):\n{logs}")
        time.sleep(0.2)
