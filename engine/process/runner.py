"""The engine process: owns one run and trains its stages one after another.

It takes the run (an OS lock on the run folder plus a claim in the database, so two engines
can never train the same run), records the environment, then for each stage builds its
recipe, continues from the last checkpoint if there is one, trains, and saves the output.
What it sets up around the run is engine/process/setup.py; how it ends one,
engine/process/ending.py; the stage rows, the resume point and the stage cache,
engine/process/stage_rows.py.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

import torch

from engine.process.ending import (
    close_recorder,
    end_run,
    failed_rank,
    failure_sentence,
    settle_checkpoint,
)
from engine.process.environment import environment_record
from engine.process.notify import attach_notifier
from engine.process.setup import (
    RunLocked,
    forward_logs,
    install_signal_handlers,
    lock_run,
    open_channel,
    pick_device,
)
from engine.process.stage_rows import (
    create_stage_rows,
    final_metrics,
    resume_point,
    reuse_stage,
    steps_done,
)
from engine.process.worker import End, RunWords, TrainStage
from engine.recipes import RECIPES
from engine.runtime.checkpoint_writer import CheckpointWriter
from engine.runtime.context import Control, StageContext
from engine.runtime.distributed import SINGLE, Dist, device_of, from_environment, peer_lost
from engine.runtime.fingerprint import plan_fingerprints
from engine.runtime.recorder import Recorder, now_ms
from engine.spec.model_config import settle_max_lengths
from engine.spec.plan import load_plan_text
from engine.store import Store, Workspace, queries
from engine.store.status import STAGE_DONE, RunStatus, StageStatus
from engine.train.evaluation import evaluate_stage
from engine.train.loop import train_stage
from engine.train.recipe import evaluation_only

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def run_engine(workspace_root: Path | None, run_id: str | None, *, resume: bool = False) -> int:
    """Train a run to its end, or until stopped; returns the process exit code.

    Under torchrun the process given the workspace (local rank 0 of the recording node)
    owns the run; the others, on any node, follow it (`engine/process/worker.py`)."""
    dist = from_environment(owner_candidate=workspace_root is not None)
    if not dist.main:
        from engine.process.worker import follow

        return follow(dist)
    assert workspace_root is not None and run_id is not None
    workspace = Workspace.open(workspace_root)
    store = Store.open(workspace.db_path)
    run = queries.get_run(store, run_id)
    run_dir = Path(run.run_dir)
    try:
        lock = lock_run(run_dir)
    except RunLocked as exc:
        print(f"stagelab engine: run {run_id}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        queries.claim_run(
            store, run_id, pid=os.getpid(), host=socket.gethostname(), resuming=resume
        )
    except queries.RunBusy as exc:
        print(f"stagelab engine: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    plan = load_plan_text(run.plan_text)
    # A brought model's positions give the max_length a plan leaves out (docs/models.md).
    settle_max_lengths(plan, Path(run.plan_dir))
    device = device_of(dist) if dist.active else pick_device(run.gpus)
    control = Control()
    install_signal_handlers(control, dist)
    recorder = Recorder(store, run_id, run_dir=run_dir)
    recorder.start()
    notifier = attach_notifier(workspace.root, run_id, recorder)  # the notify hook
    writer = CheckpointWriter()  # one writer thread for every stage's checkpoints
    create_stage_rows(store, run_id, plan)
    channel = open_channel(recorder, control, run_dir, device)
    forward_logs(recorder)
    environment = environment_record(plan, Path(run.plan_dir), device)
    if dist.active:
        environment["distributed"] = dist.describe()
    queries.set_run_environment(store, run_id, environment)
    try:
        from engine.spec.kernel_checks import device_problems
        from engine.spec.world import batch_problems

        # Checked again here: the GPUs asked for may have no CUDA on this machine.
        problems = [
            *batch_problems(plan, dist.world),
            *map(str, device_problems(plan, device.type)),
        ]
        if problems:
            raise ValueError(" ".join(problems))
        for stale in run_dir.glob("rank*.error"):  # a failure of another process, an earlier try
            stale.unlink(missing_ok=True)
        # What the other processes need to follow: the plan and where the run's files are.
        dist.broadcast(
            RunWords(
                plan_text=run.plan_text,
                plan_dir=run.plan_dir,
                run_id=run.id,
                run_dir=run.run_dir,
                cache_dir=str(workspace.root / "cache"),
            )
        )
        status = _train_stages(
            store, run, plan, device, control, recorder, workspace, channel, dist, writer
        )
        if status == RunStatus.STOPPED and control.requeue:
            # Slurm restarts the job, which resumes from the stop's checkpoint: it waits.
            status = RunStatus.QUEUED
            recorder.event("requeue", "checkpointed before the Slurm time limit; requeued")
        writer.wait()  # never `finished` with a checkpoint unwritten
        dist.broadcast(End())
    except Exception as caught:  # noqa: BLE001 - every failure is recorded, then reported
        settle_checkpoint(writer, recorder)
        other = failed_rank(run_dir) if dist.active else None
        # Another process's own error (it wrote it before exiting) is the run's.
        exc = RuntimeError(other) if other else caught
        if not other and dist.active and peer_lost(exc):
            # Another process of the run went away (killed, its node lost): torchrun ends
            # the others; the run continues with `stagelab resume`.
            recorder.event("interrupted", f"a process of the run is gone: {exc}", level="error")
            error = f"a process of the run is gone: {exc}"
            notifier.ended(RunStatus.INTERRUPTED, error)
            unwritten = close_recorder(recorder, run_dir)
            end_run(
                store,
                run_id,
                channel,
                RunStatus.INTERRUPTED,
                f"{error}; {unwritten}" if unwritten else error,
            )
            print(f"stagelab engine: run {run_id} interrupted: {exc}", file=sys.stderr)
            return EXIT_FAILED
        # The full traceback goes to engine.log (this process's stderr); the run's error,
        # the event and the terminal say one sentence that points at it.
        where = traceback.format_exc()
        print(where, file=sys.stderr, end="")
        error = failure_sentence(exc)
        recorder.event(
            "error",
            f"{error}; the traceback is in {run_dir / 'engine.log'}",
            level="error",
            data={"traceback": where},
        )
        notifier.ended(RunStatus.FAILED, error)
        unwritten = close_recorder(recorder, run_dir)
        end_run(
            store,
            run_id,
            channel,
            RunStatus.FAILED,
            error if not unwritten else f"{error}; {unwritten}",
        )
        print(f"stagelab engine: run {run_id} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        lock.close()
    notifier.ended(status)
    unwritten = close_recorder(recorder, run_dir)
    if unwritten:  # never `finished` with data the database does not have
        end_run(store, run_id, channel, RunStatus.FAILED, unwritten)
        print(f"stagelab engine: run {run_id} failed: {unwritten}", file=sys.stderr)
        dist.leave()
        return EXIT_FAILED
    end_run(store, run_id, channel, status)
    dist.leave()  # once recorded: the others wait for it in theirs
    return EXIT_OK


def _train_stages(
    store: Store,
    run: Any,
    plan: Any,
    device: torch.device,
    control: Control,
    recorder: Recorder,
    workspace: Workspace,
    channel: Any = None,
    dist: Dist = SINGLE,
    writer: CheckpointWriter | None = None,
) -> str:
    writer = writer or CheckpointWriter()
    existing = {s.idx: s for s in queries.list_stages(store, run.id)}
    resume_idx, resume_step, resume_folder = resume_point(store, run.id)
    outputs: dict[str, Path] = {}
    global_step = 0
    fingerprints = plan_fingerprints(plan, Path(run.plan_dir), device.type)
    for idx, stage in enumerate(plan.stages):
        row = existing.get(idx)
        if row is not None and row.status in STAGE_DONE and row.output_dir:
            outputs[stage.name] = Path(row.output_dir)
            global_step += row.steps_done or 0
            continue
        if control.stop_requested:  # stopped at a stage's last step: the next one waits
            return RunStatus.STOPPED
        folder = resume_folder if resume_idx == idx else None
        if folder is None and run.use_cache and stage.cache:
            reused = reuse_stage(
                store, run.id, idx, stage, fingerprints[idx], recorder, global_step
            )
            if reused is not None:
                outputs[stage.name] = Path(reused.output_dir)
                global_step += reused.steps_done or 0
                continue
        ctx = StageContext(
            index=idx,
            plan=plan,
            plan_dir=Path(run.plan_dir),
            run_id=run.id,
            run_dir=Path(run.run_dir),
            device=device,
            store=store,
            recorder=recorder,
            control=control,
            cache_dir=workspace.root / "cache",
            outputs=outputs,
            dist=dist,
            writer=writer,
        )
        # Points written after the checkpoint (or by an earlier try of this stage) are
        # dropped, so the continued series has no repeated and no missing steps.
        recorder.flush()
        after = resume_step if folder else 0
        queries.truncate_metrics_after(store, run.id, idx, after)
        if folder is not None or (row is not None and row.status != StageStatus.PENDING):
            # A stream record, ordered with the points: live clients drop what is retrained.
            recorder.event(
                "truncated",
                f"points after step {after} are trained again",
                stage_idx=idx,
                data={"stage": idx, "after_step": after},
            )
        recorder.stage(
            idx,
            status=StageStatus.RUNNING,
            started_ms=now_ms(),
            global_step_start=global_step,
            fingerprint=fingerprints[idx],
        )
        recorder.event("stage", f"stage '{stage.name}' started", stage_idx=idx)
        recipe = RECIPES[stage.kind](ctx)
        if evaluation_only(recipe):  # scored once, by the owner alone
            recipe.setup()
            outcome = evaluate_stage(ctx, recipe)
        else:
            # The others set up after the owner (a built-in tokenizer is trained and saved
            # once, then loaded), then train with it.
            dist.broadcast(
                TrainStage(
                    idx, str(folder) if folder else None, {k: str(v) for k, v in outputs.items()}
                )
            )
            recipe.setup()
            dist.barrier()
            outcome = train_stage(ctx, recipe, resume_from=folder)
        writer.wait()  # the loop has waited; this keeps the promise whatever the stage kind
        if outcome == "stopped":
            recorder.stage(idx, status=StageStatus.STOPPED)
            recorder.event(
                "stage", f"stage '{stage.name}' stopped; resume to continue", stage_idx=idx
            )
            return RunStatus.STOPPED
        recipe.save()
        outputs[stage.name] = ctx.output_dir
        recorder.flush()
        final = final_metrics(store, run.id, idx)
        recorder.stage(
            idx,
            status=StageStatus.FINISHED,
            ended_ms=now_ms(),
            output_dir=str(ctx.output_dir),
            final_metrics=final,
        )
        note = " (early stopping)" if outcome == "early_stopped" else ""
        recorder.event("stage", f"stage '{stage.name}' finished{note}", stage_idx=idx)
        global_step += steps_done(store, run.id, idx)
    return RunStatus.FINISHED
