"""A run's Slurm job through a target's shell: submit the batch script (`sbatch`), read the
job's state and Slurm's reason (`squeue`, `scontrol show job`, `sacct`), cancel it after a
checkpoint, and list the partitions and their limits (`sinfo`) for `target check`.

The job id, its node list, Slurm's reason while it waits and the script are kept in the
run's placement (`placement["slurm"]`), so `show` and the window say where the run is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.remote.slurm_script import SlurmOptions, batch_script

if TYPE_CHECKING:
    import subprocess

    from engine.store.db import Store

# Job states Slurm may still run (PENDING waits for resources, REQUEUED is on its way back).
WAITING = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING"})
ACTIVE = WAITING | {"RUNNING", "COMPLETING", "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT"}


class Runner(Protocol):
    """What these functions need of a target's shell (engine/remote/shell.py)."""

    def run(
        self, argv: list[str], *, input: bytes | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess: ...


class SlurmError(RuntimeError):
    """A Slurm command failed; the message says which and Slurm's own words."""


@dataclass(frozen=True)
class Job:
    """A job as Slurm reports it."""

    job_id: str
    state: str  # RUNNING, PENDING, COMPLETED, CANCELLED, FAILED, TIMEOUT, …
    reason: str = ""  # why it waits (Priority, Resources, BeginTime, …); "" when none
    node_list: str = ""
    partition: str = ""
    restarts: int = 0

    @property
    def waiting(self) -> bool:
        """Queued, not yet started (again)."""
        return self.state in WAITING

    @property
    def active(self) -> bool:
        """Slurm may still run it."""
        return self.state in ACTIVE


@dataclass(frozen=True)
class Partition:
    """One line of `sinfo`: a partition and its limits."""

    name: str
    default: bool
    available: str
    time_limit: str
    nodes: int
    cpus: str
    memory_mb: str
    gres: str

    def describe(self) -> str:
        """One line for `target check`."""
        gres = "" if self.gres in ("", "(null)") else f", {self.gres}"
        star = " (default)" if self.default else ""
        return (
            f"{self.name}{star}: {self.available}, {self.nodes} node(s), {self.cpus} CPUs "
            f"and {self.memory_mb} MB per node{gres}, time limit {self.time_limit}"
        )


def _call(shell: Runner, argv: list[str], *, input: bytes | None = None, timeout: float = 60):
    try:
        proc = shell.run(argv, input=input, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(
            f"'{argv[0]}' is not installed where the target runs commands; is it a Slurm "
            "login node?"
        ) from None
    return proc


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def submit(shell: Runner, script: str, timeout: float = 60) -> str:
    """Send a batch script to `sbatch`; returns the job id.

    Raises:
        SlurmError: sbatch refused it (with Slurm's reason).
    """
    proc = _call(shell, ["sbatch", "--parsable"], input=script.encode(), timeout=timeout)
    out = _text(proc.stdout).strip()
    if proc.returncode != 0 or not out:
        said = _text(proc.stderr).strip() or out or f"exit status {proc.returncode}"
        raise SlurmError(f"Slurm refused the job: {said}")
    return out.splitlines()[-1].split(";")[0]  # `id` or `id;cluster`


def _fields(line: str) -> dict[str, str]:
    """`Key=Value Key=Value …` of `scontrol show job -o` (values without spaces but the last)."""
    out: dict[str, str] = {}
    for word in line.split():
        key, sep, value = word.partition("=")
        if sep:
            out[key] = value
    return out


def job(shell: Runner, job_id: str) -> Job | None:
    """The job's state and reason, or None when Slurm no longer knows it."""
    proc = _call(shell, ["scontrol", "show", "job", "-o", job_id])
    if proc.returncode == 0 and _text(proc.stdout).strip():
        f = _fields(_text(proc.stdout).splitlines()[0])
        reason = f.get("Reason", "None")
        nodes = f.get("NodeList", "(null)")
        return Job(
            job_id,
            f.get("JobState", "UNKNOWN"),
            "" if reason == "None" else reason,
            "" if nodes == "(null)" else nodes,
            f.get("Partition", ""),
            int(f.get("Restarts", "0") or 0),
        )
    # Gone from the controller's memory: the accounting database may remember it.
    proc = _call(
        shell, ["sacct", "-X", "-n", "-P", "-j", job_id, "--format=State,NodeList,Partition"]
    )
    lines = _text(proc.stdout).strip().splitlines() if proc.returncode == 0 else []
    if not lines:
        return None
    state, nodes, partition = ([*lines[-1].split("|"), "", ""])[:3]
    return Job(job_id, state.split()[0] if state else "UNKNOWN", "", nodes, partition)


def wait_while(shell: Runner, job_id: str, keep: Callable[[Job | None], bool], timeout: float):
    """Poll the job until `keep(job)` is false or `timeout` passes; returns the last job."""
    deadline = time.monotonic() + timeout
    state = job(shell, job_id)
    while keep(state) and time.monotonic() < deadline:
        time.sleep(0.5)
        state = job(shell, job_id)
    return state


def cancel(
    shell: Runner,
    job_id: str,
    *,
    ask_stop: Callable[[], bool] | None = None,
    grace_s: float = 120,
) -> Job | None:
    """End a job after a checkpoint: a waiting job is cancelled at once; a running one is
    asked to stop (`ask_stop`, the live channel's stop, else SIGTERM to its steps, which
    the engine answers with a checkpoint as for Ctrl-C), and is cancelled outright only if
    it is still there after `grace_s`. Returns the job's last state."""
    state = job(shell, job_id)
    if state is None or not state.active:
        return state
    if not state.waiting and _steps(shell, job_id):  # no step yet: nothing to checkpoint
        if ask_stop is None or not ask_stop():
            _call(shell, ["scancel", "--signal=TERM", job_id])
        state = wait_while(shell, job_id, lambda j: j is not None and j.active, grace_s)
        if state is None or not state.active:
            return state
    proc = _call(shell, ["scancel", job_id])
    if proc.returncode != 0:
        raise SlurmError(f"scancel {job_id} failed: {_text(proc.stderr).strip()}")
    return job(shell, job_id)


def _steps(shell: Runner, job_id: str) -> list[str]:
    """The job's steps that run the engine (not its batch script)."""
    proc = _call(shell, ["squeue", "-h", "-s", "-j", job_id, "-o", "%i"])
    steps = _text(proc.stdout).split() if proc.returncode == 0 else []
    return [s for s in steps if not s.endswith((".batch", ".extern"))]


def partitions(shell: Runner) -> list[Partition]:
    """The cluster's partitions and their limits (`sinfo`).

    Raises:
        SlurmError: sinfo failed (the controller cannot be reached, …).
    """
    proc = _call(shell, ["sinfo", "-h", "-o", "%P|%a|%l|%D|%c|%m|%G"])
    if proc.returncode != 0:
        raise SlurmError(f"sinfo failed: {_text(proc.stderr).strip() or proc.returncode}")
    out = []
    for line in _text(proc.stdout).splitlines():
        cells = line.split("|")
        if len(cells) != 7:
            continue
        name, avail, limit, nodes, cpus, memory, gres = cells
        out.append(
            Partition(
                name.rstrip("*"),
                name.endswith("*"),
                avail,
                limit,
                int(nodes) if nodes.isdigit() else 0,
                cpus,
                memory,
                gres,
            )
        )
    return out


# --- the run's record -------------------------------------------------------------------


def record_submission(
    store: Store, run_id: str, options: SlurmOptions, job_id: str, script: str, nproc: int = 1
) -> dict[str, Any]:
    """Keep the job in the run's placement (`slurm`: job id, script, partition)."""
    from engine.store import queries

    per_node = options.processes(nproc)
    gpus = options.gpus_per_node * options.nodes
    slurm = {"job_id": job_id, "script": script, "partition": options.partition or ""}
    return queries.set_placement(
        store,
        run_id,
        kind="slurm",
        nodes=options.nodes,
        processes=per_node * options.nodes,
        gpus=gpus or None,
        slurm=slurm,
    )


def record_job(store: Store, run_id: str, state: Job) -> dict[str, Any]:
    """Slurm's latest word on the run's job (state, reason, node list) in its placement."""
    from engine.store import queries

    placement = queries.get_run(store, run_id).placement
    slurm = dict(placement.get("slurm") or {})
    if slurm.get("job_id") not in (None, state.job_id):
        return placement  # an earlier job of the run (a resume submitted another)
    slurm.update(
        job_id=state.job_id,
        state=state.state,
        reason=state.reason,
        node_list=state.node_list or slurm.get("node_list", ""),
        restarts=state.restarts,
    )
    if state.partition:
        slurm["partition"] = state.partition
    return queries.set_placement(store, run_id, slurm=slurm)


@dataclass(frozen=True)
class Submission:
    """A submitted run: its job id and the script that was sent."""

    job_id: str
    script: str


def run_script(
    options: SlurmOptions | dict[str, Any],
    *,
    python: str,
    workspace: str,
    run_id: str,
    nproc: int = 1,
    resume: bool = False,
    name: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """The batch script of a run (what `--dry-run` and "Show script" print)."""
    if not isinstance(options, SlurmOptions):
        options = SlurmOptions.from_mapping(options)
    return batch_script(
        options,
        python=python,
        workspace=workspace,
        run_id=run_id,
        nproc=nproc,
        resume=resume,
        name=name,
        env=env,
    )


def submit_run(
    shell: Runner,
    options: SlurmOptions | dict[str, Any],
    *,
    python: str,
    workspace: str,
    run_id: str,
    nproc: int = 1,
    resume: bool = False,
    name: str | None = None,
    env: dict[str, str] | None = None,
    store: Store | None = None,
) -> Submission:
    """Submit run `run_id`, recorded in the target's workspace `workspace`, as a job; with
    `store` (the local record) the job goes into the run's placement."""
    if not isinstance(options, SlurmOptions):
        options = SlurmOptions.from_mapping(options)
    script = run_script(
        options,
        python=python,
        workspace=workspace,
        run_id=run_id,
        nproc=nproc,
        resume=resume,
        name=name,
        env=env,
    )
    job_id = submit(shell, script)
    if store is not None:
        record_submission(store, run_id, options, job_id, script, nproc)
    return Submission(job_id, script)


def job_dict(state: Job | None) -> dict[str, Any] | None:
    """A job for `--json` answers."""
    return asdict(state) if state is not None else None
