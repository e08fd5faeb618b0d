"""The batch script of a run on a Slurm target, shown before it is sent (`--dry-run`, the
window's "Show script").

One task per node (`srun`); on each, PyTorch's launcher (torchrun) starts the node's
processes, meeting the other nodes through a c10d rendezvous on the first node. The first
node's launcher runs the engine that owns the run (`--workspace`), the others run workers.
A job of one node needs no rendezvous: `python -m engine ranks` imports torch and
transformers once and forks its processes (engine/process/group.py), as the engine server
does for a local run, instead of torchrun and one fresh interpreter per process.
A job Slurm restarts (`--requeue`: node failure, `scontrol requeue`, the time limit near)
resumes the run from its last checkpoint (`SLURM_RESTART_COUNT` > 0).

Before the time limit Slurm signals the script (`--signal=B:USR1@…`): the script passes
SIGUSR1 on to the job's steps, where only the engine that owns the run listens (the
launchers and the other processes ignore it): it checkpoints at the end of its current
step, stops and records the run `queued`; the script then requeues the job, which
continues from that checkpoint. `scontrol requeue` and `scancel` send SIGTERM, which the
engine answers with a checkpoint and a stop as for Ctrl-C.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

# Seconds before the time limit at which the engine is asked to checkpoint and stop.
# Slurm may send the signal up to a minute early; the engine ends its current step first.
SIGNAL_MARGIN_S = 300

_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORD = re.compile(r"^[A-Za-z0-9_.,:+=@%/\-\[\]]+$")


class ScriptProblem(ValueError):
    """A Slurm option that cannot go into a batch script."""


def time_limit_s(text: str) -> int:
    """Seconds of a Slurm time limit (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
    `D-HH:MM:SS`)."""
    match = _TIME.match(text.strip())
    if not match:
        raise ScriptProblem(
            f"time limit '{text}' is not Slurm's form; write minutes, HH:MM:SS or D-HH:MM:SS"
        )
    days, first, second, third = (int(g) if g else None for g in match.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        return days * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)
    if third is not None:
        return first * 3600 + (second or 0) * 60 + third
    if second is not None:
        return first * 60 + second
    return first * 60


@dataclass(frozen=True)
class SlurmOptions:
    """A Slurm target's job options (`stagelab target add … --partition …`)."""

    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    time: str | None = None
    account: str | None = None
    qos: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)  # more `#SBATCH` lines

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> SlurmOptions:
        """The options stored with a target (keys with `_` or `-`; `extra`/`sbatch` lines)."""
        given = {str(k).replace("-", "_"): v for k, v in (options or {}).items() if v is not None}
        extra = given.get("extra", given.get("sbatch", ()))
        return cls(
            partition=given.get("partition"),
            nodes=int(given.get("nodes", 1)),
            gpus_per_node=int(given.get("gpus_per_node", 0)),
            cpus_per_task=int(given["cpus_per_task"]) if "cpus_per_task" in given else None,
            time=given.get("time"),
            account=given.get("account"),
            qos=given.get("qos"),
            extra=(extra,) if isinstance(extra, str) else tuple(extra),
        )

    def processes(self, nproc: int = 1) -> int:
        """Processes per node: one per GPU, else `nproc` (CPU, gloo)."""
        return self.gpus_per_node if self.gpus_per_node > 0 else max(nproc, 1)

    def problems(self) -> list[str]:
        """Every option that cannot go into the script, as sentences."""
        out = []
        if self.nodes < 1:
            out.append(f"nodes must be 1 or more, not {self.nodes}")
        if self.gpus_per_node < 0:
            out.append(f"gpus-per-node must be 0 or more, not {self.gpus_per_node}")
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            out.append(f"cpus-per-task must be 1 or more, not {self.cpus_per_task}")
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if value is not None and not _WORD.match(str(value)):
                out.append(f"{name} '{value}' may hold only letters, digits and _.,:+=@%/-[]")
        if self.time is not None:
            try:
                time_limit_s(self.time)
            except ScriptProblem as exc:
                out.append(str(exc))
        for line in self.extra:
            if "\n" in line or "\r" in line or not _sbatch_option(line).startswith("-"):
                out.append(f"extra #SBATCH line '{line}' must be one option such as --mem=16G")
        return out


def _sbatch_option(line: str) -> str:
    text = line.strip()
    return text[len("#SBATCH") :].strip() if text.startswith("#SBATCH") else text


def signal_margin_s(time: str | None, margin_s: int = SIGNAL_MARGIN_S) -> int:
    """Seconds before the limit to signal: `margin_s`, at most a fifth of a short limit."""
    if time is None:
        return margin_s
    return max(min(margin_s, time_limit_s(time) // 5), 1)


def batch_script(
    options: SlurmOptions,
    *,
    python: str,
    workspace: str,
    run_id: str,
    nproc: int = 1,
    resume: bool = False,
    name: str | None = None,
    margin_s: int = SIGNAL_MARGIN_S,
    env: Mapping[str, str] | None = None,
) -> str:
    """The batch script that trains run `run_id` of the target's workspace `workspace`
    (an absolute path there) with the target's Python (`python`) and `env` (PYTHONPATH of
    an installed wheel, the desktop's Hub switches).

    Raises:
        ScriptProblem: an option cannot go into the script (every problem, one sentence).
    """
    problems = options.problems()
    if not PurePosixPath(workspace).is_absolute():
        problems.append(f"the target's workspace '{workspace}' must be an absolute path")
    problems += [
        f"'{k}' cannot name an environment variable" for k in env or {} if not _ENV.match(k)
    ]
    if problems:
        raise ScriptProblem("; ".join(problems))
    per_node = options.processes(nproc)
    run_dir = PurePosixPath(workspace) / "runs" / run_id
    lines = ["#!/bin/bash", f"#SBATCH --job-name=stagelab-{run_id}"]
    sbatch = [
        f"--nodes={options.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={options.cpus_per_task or per_node}",
    ]
    if options.gpus_per_node:
        sbatch.append(f"--gpus-per-node={options.gpus_per_node}")
    for name_, value in (("partition", options.partition), ("time", options.time)):
        if value:
            sbatch.append(f"--{name_}={value}")
    for name_, value in (("account", options.account), ("qos", options.qos)):
        if value:
            sbatch.append(f"--{name_}={value}")
    sbatch += [
        "--requeue",
        f"--signal=B:USR1@{signal_margin_s(options.time, margin_s)}",
        "--open-mode=append",
        f"--output={run_dir}/slurm-%j.out",
        f"--chdir={workspace}",
    ]
    sbatch += [_sbatch_option(line) for line in options.extra]
    lines += [f"#SBATCH {option}" for option in sbatch]
    lines.append(
        f"# Stagelab run {run_id}{f' ({name})' if name else ''}: "
        f"{options.nodes} node(s) x {per_node} process(es)"
    )
    lines += [f"export {k}={shlex.quote(str(v))}" for k, v in sorted((env or {}).items())]
    lines += _body(options, python, workspace, run_id, per_node, resume)
    return "\n".join(lines) + "\n"


def _node_command(python: str, workspace: str, run_id: str, nodes: int, per_node: int) -> str:
    """What `srun` runs on each node (`$STAGELAB_RESUME`, `$STAGELAB_RDZV` from the script)."""
    py = shlex.quote(python)
    run = f"run --workspace {shlex.quote(workspace)} --run-id {shlex.quote(run_id)}"
    owner = f"-m engine {run}"
    # SIGUSR1 is the owner's alone: the launcher and the other processes inherit 'ignore'.
    if nodes == 1 and per_node == 1:  # one process: the engine itself, no launcher
        return f'trap "" USR1; exec {py} {owner} $STAGELAB_RESUME'
    if nodes == 1:  # imports once, then forks the ranks (no torchrun: no rendezvous to meet)
        ranks = f"-m engine ranks --nproc {per_node} {run}"
        return f'trap "" USR1; exec {py} {ranks} $STAGELAB_RESUME'
    launcher = (
        f"exec {py} -m torch.distributed.run --nnodes={nodes} --nproc-per-node={per_node}"
        " --max-restarts=0 --rdzv-backend=c10d --rdzv-endpoint=$STAGELAB_RDZV"
        " --rdzv-id=stagelab-$SLURM_JOB_ID-${SLURM_RESTART_COUNT:-0}"
    )
    return (
        'trap "" USR1; '
        f'if [ "$SLURM_NODEID" = 0 ]; then {launcher} {owner} $STAGELAB_RESUME; '
        f"else {launcher} -m engine run --worker; fi"
    )


def _body(
    options: SlurmOptions, python: str, workspace: str, run_id: str, per_node: int, resume: bool
) -> list[str]:
    backend = "nccl" if options.gpus_per_node else "gloo"
    node = _node_command(python, workspace, run_id, options.nodes, per_node)
    cpus = options.cpus_per_task or per_node
    py = shlex.quote(python)
    return [
        "set -u",
        "export PYTHONUNBUFFERED=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1",
        f"export STAGELAB_DIST_BACKEND={backend}",
        f"export STAGELAB_RESUME={'--resume' if resume else ''}",
        "# A job Slurm restarted continues the run from its last checkpoint.",
        'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then STAGELAB_RESUME=--resume; fi',
        "# torchrun's c10d rendezvous on the first node (this one), at a free port.",
        'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "addr=$(scontrol show node \"$head\" | sed -n 's/.*NodeAddr=\\([^ ]*\\).*/\\1/p')",
        f'port=$({py} -c \'import socket; s = socket.socket(); s.bind(("", 0)); '
        "print(s.getsockname()[1])')",
        'export STAGELAB_RDZV="${addr:-$head}:$port"',
        "# Near the time limit: the engine checkpoints and stops (SIGUSR1 to the job's",
        "# steps, not to this script), then the job is requeued and resumes from there.",
        "requeue=0",
        'on_limit() { requeue=1; scancel --signal=USR1 "$SLURM_JOB_ID"; }',
        "trap on_limit USR1",
        f"srun --nodes={options.nodes} --ntasks-per-node=1 --cpus-per-task={cpus} "
        f"--kill-on-bad-exit=1 bash -c {shlex.quote(node)} &",
        "step=$!",
        "# `wait` returns when the trap runs: wait again until the step has ended.",
        "while :; do",
        '  wait "$step"; rc=$?',
        '  kill -0 "$step" 2>/dev/null || break',
        "done",
        'if [ "$requeue" = 1 ]; then',
        '  echo "stagelab: the time limit is near; the run is checkpointed, the job requeued"',
        '  scontrol requeue "$SLURM_JOB_ID"',
        "fi",
        'exit "$rc"',
    ]
