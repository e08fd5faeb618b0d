"""What a stage recipe and the training loop get from the runner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.runtime.checkpoint import prune_checkpoints, take_snapshot, write_snapshot
from engine.runtime.checkpoint_writer import CheckpointWriter
from engine.runtime.distributed import SINGLE, Dist
from engine.runtime.recorder import Recorder
from engine.spec.plan import Plan


class Control:
    """Requests from outside the loop (signals now, the live channel later), read by the
    loop at step boundaries only, so a step is never cut in half."""

    def __init__(self) -> None:
        self.stop_requested = False
        self.checkpoint_requested = False
        # Stopped for Slurm to requeue the job: the run waits (`queued`), it is not stopped.
        self.requeue = False
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        """Ask for a checkpoint and a clean exit after the current step."""
        self.stop_requested = True
        self._running.set()

    def stop_for_requeue(self) -> None:
        """Like `stop`, for a job that Slurm restarts: it continues from the checkpoint."""
        self.requeue = True
        self.stop()

    def pause(self) -> None:
        """Hold training after the current step (not once a stop is asked for)."""
        if not self.stop_requested:
            self._running.clear()

    def resume(self) -> None:
        """Continue after a pause."""
        self._running.set()

    @property
    def paused(self) -> bool:
        """Whether training is held."""
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused (a stop request ends the wait); True once running."""
        return self._running.wait(timeout)


@dataclass
class StageContext:
    """One stage's settings and the run's services."""

    index: int
    plan: Plan
    plan_dir: Path
    run_id: str
    run_dir: Path
    device: torch.device
    store: Any
    recorder: Recorder
    control: Control
    cache_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    dist: Dist = SINGLE  # several processes: this one's rank; only the owner writes
    # The run's checkpoint writer thread (one per engine process; the runner shares it).
    writer: CheckpointWriter = field(default_factory=CheckpointWriter)

    @property
    def stage(self) -> Any:
        """The stage's settings."""
        return self.plan.stages[self.index]

    @property
    def stage_dir(self) -> Path:
        """Folder of this stage's files: output, tokenizer."""
        return self.run_dir / "stages" / f"{self.index}-{self.stage.name}"

    @property
    def output_dir(self) -> Path:
        """The stage's save_pretrained output."""
        return self.stage_dir / "output"

    def save_checkpoint(
        self,
        modules: dict[str, torch.nn.Module],
        step: int,
        state: dict,
        reason: str,
        on_written: Callable[[], None] | None = None,
    ) -> Path:
        """Snapshot a checkpoint now and write it on the writer thread; once it is on disk,
        record it (its row once its metrics are stored), prune old ones and call
        `on_written`. Waits for the previous write first (at most one in flight).

        Raises:
            CheckpointWriteError: the previous write failed.
        """
        self.writer.wait()
        snapshot = take_snapshot(modules, state, reuse=self.writer.spare())
        folder = self.run_dir / "checkpoints" / f"stage{self.index}-step{step}"
        keep_last = self.stage.checkpoint.keep_last

        def prune() -> None:
            mine = sorted(
                (
                    p
                    for p in (self.run_dir / "checkpoints").glob(f"stage{self.index}-step*")
                    if int(p.name.rsplit("step", 1)[1]) <= step
                ),
                key=lambda p: int(p.name.rsplit("step", 1)[1]),
            )
            prune_checkpoints(mine, keep_last)

        def write() -> None:
            write_snapshot(folder, snapshot)
            # Only now, with the files on disk: the row is written by the recorder once
            # every metric recorded before it is stored, so a resume from this checkpoint
            # finds a complete series to continue; folders are pruned only then, and only
            # older ones, so the newest recorded one survives.
            self.recorder.checkpoint(self.index, step, str(folder), on_stored=prune)
            self.recorder.event(
                "checkpoint",
                f"checkpoint at step {step} ({reason})",
                stage_idx=self.index,
                data={"step": step, "path": str(folder)},
            )
            if on_written is not None:
                on_written()

        self.writer.submit(f"the checkpoint of stage {self.index} at step {step}", write, snapshot)
        return folder
