"""The batch script of a Slurm target (what `--dry-run` shows), and the Slurm commands on a
real one-node cluster: partitions, a waiting job's reason, cancel, a refused job."""

from __future__ import annotations

import subprocess

import pytest

from engine.remote import slurm
from engine.remote.shell import LocalShell
from engine.remote.slurm_script import (
    ScriptProblem,
    SlurmOptions,
    batch_script,
    signal_margin_s,
    time_limit_s,
)
from tests.engine.process.test_runs import wait_for
from tests.engine.remote.slurm_fixtures import slurm_cluster  # noqa: F401


def script(options: SlurmOptions, **kwargs) -> str:
    args = {"python": "/opt/py/bin/python", "workspace": "/w/ws", "run_id": "abc"} | kwargs
    text = batch_script(options, **args)
    subprocess.run(["bash", "-n"], input=text.encode(), check=True)  # it parses
    return text


def sbatch_lines(text: str) -> list[str]:
    return [
        line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH")
    ]


def test_the_script_asks_slurm_for_what_the_target_says():
    options = SlurmOptions.from_mapping(
        {
            "partition": "gpu",
            "nodes": 2,
            "gpus_per_node": 4,
            "cpus_per_task": 32,
            "time": "1-00:00:00",
            "account": "lab",
            "qos": "high",
            "sbatch": ["--mem=64G", "#SBATCH --exclusive"],
        }
    )
    text = script(options, env={"PYTHONPATH": "/w/stagelab 1"})
    assert sbatch_lines(text) == [
        "--job-name=stagelab-abc",
        "--nodes=2",
        "--ntasks-per-node=1",
        "--cpus-per-task=32",
        "--gpus-per-node=4",
        "--partition=gpu",
        "--time=1-00:00:00",
        "--account=lab",
        "--qos=high",
        "--requeue",
        "--signal=B:USR1@300",
        "--open-mode=append",
        "--output=/w/ws/runs/abc/slurm-%j.out",
        "--chdir=/w/ws",
        "--mem=64G",
        "--exclusive",
    ]
    assert "export PYTHONPATH='/w/stagelab 1'" in text
    assert "STAGELAB_DIST_BACKEND=nccl" in text
    srun = next(line for line in text.splitlines() if line.startswith("srun "))
    assert "--nodes=2 --ntasks-per-node=1 --cpus-per-task=32" in srun
    # torchrun on every node, the rendezvous on the first; node 0 owns the run.
    assert srun.count("-m torch.distributed.run --nnodes=2 --nproc-per-node=4") == 2
    assert "--rdzv-backend=c10d --rdzv-endpoint=$STAGELAB_RDZV" in srun
    assert "--workspace /w/ws --run-id abc $STAGELAB_RESUME" in srun
    assert "-m engine run --worker" in srun
    assert 'trap "" USR1' in srun  # only the owning engine answers the limit's signal
    assert 'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then STAGELAB_RESUME=--resume; fi' in text
    assert "trap on_limit USR1" in text and 'scontrol requeue "$SLURM_JOB_ID"' in text


def test_one_cpu_process_runs_the_engine_itself():
    text = script(SlurmOptions(), resume=True)
    assert "torch.distributed.run" not in text
    assert "exec /opt/py/bin/python -m engine run --workspace /w/ws --run-id abc" in text
    assert "export STAGELAB_RESUME=--resume" in text
    assert "--cpus-per-task=1" in sbatch_lines(text)
    # Two on one node: imported once and forked (no torchrun, no rendezvous).
    two = script(SlurmOptions(), nproc=2)
    assert "torch.distributed.run" not in two and "STAGELAB_DIST_BACKEND=gloo" in two
    assert (
        "exec /opt/py/bin/python -m engine ranks --nproc 2 run --workspace /w/ws --run-id abc"
        " $STAGELAB_RESUME" in two
    )


def test_time_limits_and_the_signal_before_them():
    assert time_limit_s("30") == 1800
    assert time_limit_s("30:15") == 1815
    assert time_limit_s("4:00:00") == 14400
    assert time_limit_s("2-12") == 2 * 86400 + 12 * 3600
    assert time_limit_s("1-00:30") == 86400 + 1800
    assert signal_margin_s("4:00:00") == 300
    assert signal_margin_s("10") == 120  # a fifth of a short limit
    assert signal_margin_s(None) == 300


def test_options_that_cannot_go_into_a_script_are_refused_in_one_sentence():
    bad = SlurmOptions(
        partition="gpu; rm -rf ~", time="soon", nodes=0, extra=("--mem=1G\nrm -rf ~",)
    )
    with pytest.raises(ScriptProblem) as caught:
        batch_script(bad, python="python3", workspace="~/ws", run_id="abc", env={"A B": "1"})
    message = str(caught.value)
    for part in (
        "nodes must be 1 or more",
        "partition 'gpu; rm -rf ~' may hold only",
        "time limit 'soon' is not Slurm's form",
        "must be one option such as --mem=16G",
        "'~/ws' must be an absolute path",
        "'A B' cannot name an environment variable",
    ):
        assert part in message


@pytest.fixture
def cluster(slurm_cluster, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    return slurm_cluster


SLEEPER = "#!/bin/bash\n#SBATCH --output=/dev/null\nsrun sleep 120\n"


def test_partitions_a_waiting_jobs_reason_and_cancel(cluster):
    shell = LocalShell()
    (debug,) = slurm.partitions(shell)
    assert (debug.name, debug.default, debug.available, debug.cpus) == ("debug", True, "up", "2")
    assert "debug (default): up, 1 node(s), 2 CPUs" in debug.describe()
    later = slurm.submit(
        shell, SLEEPER.replace("\n#SBATCH", "\n#SBATCH --begin=now+1hour\n#SBATCH")
    )
    waiting = slurm.job(shell, later)
    assert waiting is not None and waiting.waiting and waiting.reason == "BeginTime"
    assert not slurm.cancel(shell, later).active
    running = slurm.submit(shell, SLEEPER)
    wait_for(lambda: slurm._steps(shell, running), 30, "the job's step")
    assert slurm.job(shell, running).node_list == cluster.node
    # Asked to stop (SIGTERM to its steps), the job ends well before the grace.
    ended = slurm.cancel(shell, running, grace_s=30)
    assert ended is not None and not ended.active and ended.state != "CANCELLED"


def test_a_job_slurm_refuses_is_one_sentence(cluster):
    with pytest.raises(slurm.SlurmError, match="Slurm refused the job: .*[Pp]artition"):
        slurm.submit(LocalShell(), "#!/bin/bash\n#SBATCH --partition=nope\ntrue\n")
