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


def refresh(shell: Shell, store: Store, run: Any) -> slurm.Job | None:
    """Ask Slurm about the run's job and keep its state, reason and node list in the local
    record (the window's queued line, `show`); None for a job Slurm has forgotten."""
    job_id = job_of(run)
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
    import os

    from engine.launch.runs import checked_plan
    from engine.remote.runs import PASSED_ENV, remote_workspace
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
        passed = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        text = script_for(
            target, side, remote_workspace(side), nproc=nproc, name=name or plan.name, passed=passed
        )
    except (ShellError, SetupError, ScriptProblem) as exc:
        return None, (str(exc),)
    return text, ()
