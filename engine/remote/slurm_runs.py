"""A run on a Slurm target (`slurm://`, `slurm+ssh://`), for `stagelab run --target`,
`resume`, `stop` and the window: how many processes the target's options give, the batch
script of a run (also `--dry-run` and "Show script"), its submission once the target's
agent has recorded the run, and Slurm's word on the job in the local record.

The run is recorded in the target's workspace as for an SSH target (same id); instead of an
engine started there, `sbatch` gets the script (engine/remote/slurm_script.py), and the job's
engine records into that workspace. The login node and the compute nodes share the workdir.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.remote import slurm
from engine.remote.slurm_script import SlurmOptions
from engine.store.status import RunStatus

if TYPE_CHECKING:
    from engine.remote.setup import RemoteSide
    from engine.remote.shell import Shell
    from engine.remote.targets import Target
    from engine.store.db import Store

DRY_RUN_ID = "RUN_ID"  # the script `--dry-run` shows names no recorded run


def is_slurm(target: Target | None) -> bool:
    """Whether runs on the target are Slurm jobs."""
    return target is not None and target.kind in ("slurm", "slurm+ssh")


@dataclass(frozen=True)
class Layout:
    """Where a run's processes go on a Slurm target."""

    options: SlurmOptions
    per_node: int
    gpus: str  # the run's `gpus` there: the node's GPUs by index, or "cpu"

    @property
    def world(self) -> int:
        """Processes of the run in all."""
        return self.per_node * self.options.nodes


def layout(target: Target, nproc: int = 1) -> Layout:
    """Processes per node: one per GPU the target asks for (`--gpus-per-node`), else `nproc`
    CPU processes (gloo). The desktop's `--gpus` does not apply: Slurm gives the GPUs."""
    options = SlurmOptions.from_mapping(target.slurm)
    per_node = options.processes(nproc)
    gpus = ",".join(str(i) for i in range(options.gpus_per_node)) or "cpu"
    return Layout(options, per_node, gpus)


def env_there(side: RemoteSide, passed: dict[str, str]) -> dict[str, str]:
    """The job's extra environment: the target's Stagelab (PYTHONPATH) and the desktop's
    Hub switches."""
    return {**side.env(), **passed}


def script_for(
    target: Target,
    side: RemoteSide,
    workspace: str,
    run_id: str = DRY_RUN_ID,
    *,
    nproc: int = 1,
    resume: bool = False,
    name: str | None = None,
    passed: dict[str, str] | None = None,
) -> str:
    """The batch script of a run on the target (raises ScriptProblem)."""
    return slurm.run_script(
        layout(target, nproc).options,
        python=side.python,
        workspace=workspace,
        run_id=run_id,
        nproc=nproc,
        resume=resume,
        name=name,
        env=env_there(side, passed or {}),
    )


def submit_recorded(
    shell: Shell,
    store: Store,
    target: Target,
    side: RemoteSide,
    *,
    run_id: str,
    workspace: str,
    nproc: int = 1,
    resume: bool = False,
    name: str | None = None,
    passed: dict[str, str] | None = None,
) -> slurm.Submission:
    """Submit a run the target's workspace has recorded; the job goes into the local
    record's placement (job id, script, partition, nodes, processes).

    Raises:
        slurm.SlurmError: Slurm refused the job. ScriptProblem: an option cannot be written.
    """
    script = script_for(
        target, side, workspace, run_id, nproc=nproc, resume=resume, name=name, passed=passed
    )
    job_id = slurm.submit(shell, script)
    slurm.record_submission(store, run_id, layout(target, nproc).options, job_id, script, nproc)
    return slurm.Submission(job_id, script)


def job_of(run: Any) -> str | None:
    """The Slurm job id in a run's record, if it is a Slurm run."""
    placement = getattr(run, "placement", None) or {}
    return (
        (placement.get("slurm") or {}).get("job_id") if placement.get("kind") == "slurm" else None
    )


def check_job_gone(shell: Shell, run: Any) -> None:
    """Before a Slurm run is resumed as a new job: its last job must be over.

    Raises:
        slurm.SlurmError: Slurm still has the job (waiting or running).
    """
    job_id = job_of(run)
    state = slurm.job(shell, job_id) if job_id else None
    if state is not None and state.active:
        raise slurm.SlurmError(
            f"run {run.id}'s Slurm job {job_id} is {state.state.lower()}; it resumes by "
            f"itself, or stop it first with: stagelab stop {run.id}"
        )


def refresh(shell: Shell, store: Store, run: Any) -> slurm.Job | None:
    """Ask Slurm about the run's job and keep its state, reason and node list in the local
    record (the window's queued line, `show`); None for a job Slurm has forgotten. The job
    is the one the record names now (a resume submits another)."""
    from engine.store import queries

    job_id = job_of(queries.get_run(store, run.id))
    if job_id is None:
        return None
    state = slurm.job(shell, job_id)
    if state is not None:
        slurm.record_job(store, run.id, state)
    return state


def cancel_run(shell: Shell, store: Store, run: Any, ask_stop=None) -> slurm.Job | None:  # noqa: ANN001
    """Stop a Slurm run: a waiting job is cancelled, a running one stopped after a
    checkpoint (`ask_stop`: the live channel's stop; else SIGTERM to its steps), and
    cancelled if it is still there after the grace."""
    job_id = job_of(run)
    if job_id is None:
        return None
    state = slurm.cancel(shell, job_id, ask_stop=ask_stop)
    if state is not None:
        slurm.record_job(store, run.id, state)
    return state


def dry_run(
    workspace: Any,
    target: Target,
    *,
    plan_text: str,
    plan_dir: str,
    nproc: int = 1,
    name: str | None = None,
    source: str = "plan",
) -> tuple[str | None, tuple[str, ...]]:
    """The batch script a run of the plan would send (`--dry-run`), or every problem: the
    plan is checked and the target asked where its Stagelab is; nothing is sent or recorded."""

    from engine.launch.runs import checked_plan
    from engine.remote.runs import passed_env, remote_workspace
    from engine.remote.setup import SetupError, ready
    from engine.remote.shell import ShellError, shell_for
    from engine.remote.slurm_script import ScriptProblem

    jobs = layout(target, nproc)
    plan, problems = checked_plan(plan_text, plan_dir, jobs.world, source)
    problems = problems or tuple(jobs.options.problems())
    if problems:
        return None, problems
    try:
        side = ready(shell_for(target), target, workspace.root / "cache" / "wheels", install=False)
        passed = passed_env(workspace)
        text = script_for(
            target, side, remote_workspace(side), nproc=nproc, name=name or plan.name, passed=passed
        )
    except (ShellError, SetupError, ScriptProblem) as exc:
        return None, (str(exc),)
    return text, ()


def stop_run(store: Store, run: Any, ask_stop=None) -> slurm.Job | None:  # noqa: ANN001
    """`stagelab stop` of a Slurm run: `cancel_run` through the target's shell; a run whose
    job was cancelled before its engine started is `stopped` here.

    Raises:
        slurm.SlurmError, ShellError: Slurm or the target cannot be reached.
    """
    from engine.remote.shell import shell_for
    from engine.remote.targets import get_target
    from engine.store import queries
    from engine.store.status import RunStatus

    shell = shell_for(get_target(store, run.target))
    try:
        state = cancel_run(shell, store, run, ask_stop=ask_stop)
    finally:
        shell.close()
    if state is not None and not state.active:
        if queries.get_run(store, run.id).stored_status == RunStatus.QUEUED:
            queries.set_run_status(store, run.id, RunStatus.STOPPED, error=None)
    return state


class JobAwareTransport:
    """The mirror's transport of a Slurm run: each pull also asks Slurm about the job (at
    most every `every_s`), keeping its state and reason in the local record (the queued
    line). The record there is read with the job: a run its engine left `stopped` or
    `interrupted` while Slurm still has the job (requeued, about to restart) is passed on
    as `queued`, so the mirror waits for the restarted engine; a run still `queued` whose
    job has ended (cancelled while it waited, or its engine never started) has ended."""

    def __init__(self, inner: Any, store: Store, run: Any, every_s: float = 5.0):
        self.inner, self.store, self.run, self.every_s = inner, store, run, every_s
        self._asked = float("-inf")
        self._job: slurm.Job | None = None
        self._known = False  # whether Slurm answered the last time it was asked

    @property
    def shell(self) -> Any:
        return self.inner.shell

    def connect(self) -> dict[str, Any]:
        return self.inner.connect()

    def close(self) -> None:
        self.inner.close()

    def pull(self, after: int) -> list[str]:
        import json
        import time

        lines = list(self.inner.pull(after))
        if time.monotonic() - self._asked >= self.every_s:
            self._asked = time.monotonic()
            try:
                self._job, self._known = refresh(self.inner.shell, self.store, self.run), True
            except (OSError, slurm.SlurmError):
                self._known = False  # Slurm out of reach: the record alone decides
        if not self._known:
            return lines
        for i, raw in enumerate(lines):
            line = json.loads(raw) if raw.strip() else {}
            if line.get("what") == "run":
                lines[i] = json.dumps(_with_job(line, self._job))
                break
        return lines


def _with_job(line: dict[str, Any], job: slurm.Job | None) -> dict[str, Any]:
    """The pulled run line as its job makes it (see JobAwareTransport)."""
    status, alive = line.get("status"), line.get("alive")
    if job is not None and job.active:
        if status in (RunStatus.STOPPED, RunStatus.INTERRUPTED) and not alive:
            return {**line, "status": RunStatus.QUEUED}
        return line
    if status == RunStatus.QUEUED:
        if job is not None and job.state == "CANCELLED":
            return {**line, "status": RunStatus.STOPPED}
        said = f"ended {job.state}" if job is not None else "is gone"
        return {**line, "status": RunStatus.FAILED, "error": f"its Slurm job {said} before it ran"}
    return line


def job_aware(transport: Any, store: Store, run: Any) -> Any:
    """The mirror's transport, Slurm-aware for a Slurm run (else as it is)."""
    if job_of(run) is None or not hasattr(transport, "shell"):
        return transport
    return JobAwareTransport(transport, store, run)
