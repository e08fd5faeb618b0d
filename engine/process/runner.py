"""The engine process: owns one run and trains its stages one after another.

It takes the run (an OS lock on the run folder plus a claim in the database, so two engines
can never train the same run), records the environment, then for each stage builds its
recipe, continues from the last checkpoint if there is one, trains, and saves the output.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from engine.process.environment import environment_record
from engine.process.worker import End, RunWords, TrainStage
from engine.recipes import RECIPES
from engine.runtime.checkpoint_writer import CheckpointWriter
from engine.runtime.context import Control, StageContext
from engine.runtime.distributed import SINGLE, Dist, device_of, from_environment, peer_lost
from engine.runtime.fingerprint import plan_fingerprints
from engine.runtime.recorder import Recorder, now_ms
from engine.spec.plan import load_plan_text
from engine.store import Store, Workspace, queries
from engine.store.status import STAGE_DONE, RunStatus, StageStatus
from engine.train.evaluation import evaluate_stage
from engine.train.loop import train_stage
from engine.train.recipe import evaluation_only

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class RunLocked(RuntimeError):
    """Another engine process holds this run."""


def lock_run(run_dir: Path) -> Any:
    """Hold an exclusive OS lock on the run folder for the life of this process.

    The kernel drops the lock when the process dies, even by SIGKILL, so a crashed run can
    be resumed at once while a live one can never be taken twice.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / "engine.lock", "a+")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunLocked("another engine process is already training this run") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def pick_device(gpus: str) -> torch.device:
    """The device for the run's GPU choice ('cpu' or '0,1': the first one is used)."""
    if not gpus or gpus == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(f"cuda:{gpus.split(',')[0].strip()}")


def install_signal_handlers(control: Control, dist: Dist = SINGLE) -> None:
    """Ctrl-C and SIGTERM ask for a checkpoint and a clean stop; a second Ctrl-C quits
    (one process only: under torchrun a Ctrl-C reaches the owner twice, from the terminal
    and from the launcher)."""

    def on_signal(signum: int, _frame: Any) -> None:
        if control.stop_requested and not dist.active:
            raise KeyboardInterrupt
        control.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _resume_point(store: Store, run_id: str) -> tuple[int, int, Path | None]:
    """(stage index, step, folder) of the newest checkpoint whose folder still exists."""
    ckpt = queries.latest_checkpoint(store, run_id)
    if ckpt is not None and Path(ckpt.path).exists():
        return ckpt.stage_idx, ckpt.step, Path(ckpt.path)
    return -1, 0, None


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
    device = device_of(dist) if dist.active else pick_device(run.gpus)
    control = Control()
    install_signal_handlers(control, dist)
    recorder = Recorder(store, run_id, run_dir=run_dir)
    recorder.start()
    writer = CheckpointWriter()  # one writer thread for every stage's checkpoints
    _create_stage_rows(store, run_id, plan)
    channel = open_channel(recorder, control, run_dir, device)
    forward_logs(recorder)
    environment = environment_record(plan, Path(run.plan_dir), device)
    if dist.active:
        environment["distributed"] = dist.describe()
    queries.set_run_environment(store, run_id, environment)
    try:
        from engine.spec.world import batch_problems

        problems = batch_problems(plan, dist.world)
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
        writer.wait()  # never `finished` with a checkpoint unwritten
        dist.broadcast(End())
    except Exception as caught:  # noqa: BLE001 - every failure is recorded, then reported
        _settle_checkpoint(writer, recorder)
        failed_rank = _failed_rank(run_dir) if dist.active else None
        # Another process's own error (it wrote it before exiting) is the run's.
        exc = RuntimeError(failed_rank) if failed_rank else caught
        if not failed_rank and dist.active and peer_lost(exc):
            # Another process of the run went away (killed, its node lost): torchrun ends
            # the others; the run continues with `stagelab resume`.
            recorder.event("interrupted", f"a process of the run is gone: {exc}", level="error")
            error = f"a process of the run is gone: {exc}"
            unwritten = _close_recorder(recorder, run_dir)
            _end(
                store,
                run_id,
                channel,
                RunStatus.INTERRUPTED,
                f"{error}; {unwritten}" if unwritten else error,
            )
            print(f"stagelab engine: run {run_id} interrupted: {exc}", file=sys.stderr)
            return EXIT_FAILED
        recorder.event(
            "error",
            f"{type(exc).__name__}: {exc}",
            level="error",
            data={"traceback": traceback.format_exc()},
        )
        error = f"{type(exc).__name__}: {exc}"
        unwritten = _close_recorder(recorder, run_dir)
        _end(
            store,
            run_id,
            channel,
            RunStatus.FAILED,
            error if not unwritten else f"{error}; {unwritten}",
        )
        print(f"stagelab engine: run {run_id} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        lock.close()
    unwritten = _close_recorder(recorder, run_dir)
    if unwritten:  # never `finished` with data the database does not have
        _end(store, run_id, channel, RunStatus.FAILED, unwritten)
        print(f"stagelab engine: run {run_id} failed: {unwritten}", file=sys.stderr)
        return EXIT_FAILED
    _end(store, run_id, channel, status)
    return EXIT_OK


def _settle_checkpoint(writer: CheckpointWriter, recorder: Recorder) -> None:
    """On a failure: let the checkpoint in flight reach the disk and its row the recorder
    (a resume continues from it); if it fails as well, say so next to the first error."""
    try:
        writer.wait()
    except Exception as exc:  # noqa: BLE001 - the run fails already; this is one more fact
        recorder.event("error", f"{type(exc).__name__}: {exc}", level="error")


RANK_ERROR_WAIT_S = 0.5  # the longest the owner waits for another process's error file
RANK_ERROR_POLL_S = 0.02


def _failed_rank(run_dir: Path, wait_s: float = RANK_ERROR_WAIT_S) -> str | None:
    """The error another process of the run wrote before it exited, if one did.

    A failing process writes its file before it exits, but the owner may notice the failure
    first (the collective it waits in breaks as soon as the peer's socket closes), so the
    file is looked for until it is there and not empty, at most `wait_s`: a run whose peer
    wrote one is reported at once, one with none (a peer killed) after `wait_s`.
    """
    deadline = time.monotonic() + wait_s
    while True:
        for path in sorted(run_dir.glob("rank*.error")):
            text = path.read_text(errors="replace")
            if text or time.monotonic() >= deadline:  # empty: being written, look again
                return f"process {path.stem}: {text}"
        if time.monotonic() >= deadline:
            return None
        time.sleep(RANK_ERROR_POLL_S)


def _close_recorder(recorder: Recorder, run_dir: Path) -> str | None:
    """Write what is left; None if everything is stored, else why not (and the rows are
    kept in `unwritten.jsonl`)."""
    # How long the last writes are retried before the run is called failed.
    if recorder.close(timeout=float(os.environ.get("STAGELAB_FINAL_FLUSH_S", "30"))):
        return None
    path = run_dir / "unwritten.jsonl"
    try:
        count = recorder.dump_pending(path)
        kept = f"; they are kept in {path}"
    except OSError as exc:
        count, kept = recorder.pending, f" and could not be kept either ({exc})"
    return f"{count} records could not be written to the database ({recorder.last_error}){kept}"


def _end(store: Store, run_id: str, channel: Any, status: str, error: str | None = None) -> None:
    if channel is not None:
        channel.finish(status)  # from here on the channel writes no status of its own
    try:
        queries.set_run_status(store, run_id, status, error=error)
    except Exception as exc:  # noqa: BLE001 - the database is gone; say so and exit
        print(f"stagelab engine: could not record status '{status}': {exc}", file=sys.stderr)
    if channel is not None:
        channel.close()  # clients get `bye` once the final status is stored


def open_channel(recorder: Recorder, control: Control, run_dir: Path, device: torch.device):
    """Serve the run's live channel; a run trains on (headless) if the socket cannot open."""
    from engine.channel.gpus import gpu_monitor
    from engine.channel.server import ChannelServer

    server = ChannelServer(recorder, control, run_dir, gpu_monitor=gpu_monitor(device))
    try:
        server.start()
    except OSError as exc:
        recorder.event(
            "channel", f"no live channel ({exc}); the run is recorded as usual", level="warning"
        )
        return None
    recorder.listeners.append(server.publish)
    return server


class _EventLogHandler(logging.Handler):
    """Warnings of the libraries (transformers, datasets) become `log` events of the run."""

    def __init__(self, recorder: Recorder):
        super().__init__(logging.WARNING)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = "error" if record.levelno >= logging.ERROR else "warning"
            self.recorder.event("log", f"{record.name}: {record.getMessage()}", level=level)
        except Exception:  # noqa: BLE001 - logging must never break training
            pass


def forward_logs(recorder: Recorder) -> None:
    """Send library warnings to the run's events (and so to the window's log console)."""
    handler = _EventLogHandler(recorder)
    for name in ("transformers", "datasets", "engine"):
        logging.getLogger(name).addHandler(handler)


def _create_stage_rows(store: Store, run_id: str, plan: Any) -> None:
    existing = {s.idx for s in queries.list_stages(store, run_id)}
    for idx, stage in enumerate(plan.stages):
        if idx not in existing:
            queries.upsert_stage(
                store, run_id, idx, name=stage.name, kind=stage.kind, status=StageStatus.PENDING
            )


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
    resume_idx, resume_step, resume_folder = _resume_point(store, run.id)
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
            reused = _reuse(store, run.id, idx, stage, fingerprints[idx], recorder, global_step)
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
        final = {k: v for (s, k), v in _latest_by_stage(store, run.id).items() if s == idx}
        recorder.stage(
            idx,
            status=StageStatus.FINISHED,
            ended_ms=now_ms(),
            output_dir=str(ctx.output_dir),
            final_metrics=final,
        )
        note = " (early stopping)" if outcome == "early_stopped" else ""
        recorder.event("stage", f"stage '{stage.name}' finished{note}", stage_idx=idx)
        global_step += _steps_done(store, run.id, idx)
    return RunStatus.FINISHED


def _reuse(
    store: Store,
    run_id: str,
    idx: int,
    stage: Any,
    fingerprint: str,
    recorder: Recorder,
    global_step: int,
) -> Any:
    """Reuse a finished stage with this fingerprint, if the workspace has one: the stage row
    points at its output and copies its final metrics; nothing is trained. Returns the
    source stage, or None."""
    found = queries.find_reusable_stage(store, fingerprint, exclude_run=run_id)
    if found is None:
        return None
    source_run, source = found
    source_idx = source.reused_from["stage"] if source.reused_from else source.idx
    stamp = now_ms()
    recorder.stage(
        idx,
        status=StageStatus.REUSED,
        started_ms=stamp,
        ended_ms=stamp,
        global_step_start=global_step,
        steps_done=source.steps_done,
        total_steps=source.total_steps,
        output_dir=source.output_dir,
        final_metrics=source.final_metrics,
        fingerprint=fingerprint,
        reused_run_id=source_run,
        reused_stage_idx=source_idx,
    )
    recorder.event(
        "stage",
        f"stage '{stage.name}' reused from run {source_run} stage {source_idx} "
        "(same settings, data and upstream stages); not trained again",
        stage_idx=idx,
        data={"reused_from": {"run": source_run, "stage": source_idx}},
    )
    recorder.flush()
    return source


def _latest_by_stage(store: Store, run_id: str) -> dict[tuple[int, str], float]:
    return {(m.stage_idx, m.key): m.value for m in queries.latest_metrics(store, run_id)}


def _steps_done(store: Store, run_id: str, idx: int) -> int:
    for s in queries.list_stages(store, run_id):
        if s.idx == idx:
            return s.steps_done or 0
    return 0
