"""A run's stored record read for the monitor on a worker thread (`HistoryLoader`): the
planned stages, stages and events first, then the series in chunks, then the points of
reused stages from the runs that trained them. The event loop never waits on SQLite."""

from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.model.run_series import RunSeries

# Series that date a stage's steps: the loss, logged every few steps of a training stage;
# the evaluation loss for a stage that only evaluates.
CLOCK_KEYS = ("train/loss", "eval/loss")


class HistoryLoader(QObject):
    """Reads a run's stored record on a worker thread: stages and events first, then the
    series in chunks (the curves fill in as they arrive)."""

    header = Signal(str, object, object, object)  # run id, planned stages, stages, events
    series = Signal(int, str, object, object)  # stage, key, steps, values
    # run id, reused stage, its source's name ("reused from run 2"), the source's series
    reused = Signal(str, int, str, object)
    done = Signal(str, int)  # run id, stream position loaded up to
    clock = Signal(int, object, object)  # stage, steps, wall seconds (the x axis by time)

    def load(self, store, run_id: str) -> None:
        from engine.store import queries
        from engine.store.browse import read_history
        from engine.store.stream import read_events

        def work() -> None:
            # The position first: everything read below is at or before it, and the live
            # stream continues after it, so nothing is missed or drawn twice.
            upto = queries.max_seq(store, run_id)
            planned = planned_stages(queries.get_run(store, run_id))
            stages = [stage.__dict__ for stage in queries.list_stages(store, run_id)]
            self.header.emit(run_id, planned, stages, read_events(store, run_id, upto))
            # One series at a time (a few hundred blob reads per million points); a pause
            # after each lets the GUI thread take the interpreter lock back at once.
            for stage, key, steps, values in read_history(store, run_id, upto):
                self.series.emit(stage, key, steps.astype(np.float64), values)
                time.sleep(0.0005)
            for stage, steps, walls in read_clock(store, run_id):
                self.clock.emit(stage, steps, walls)
            # Reused stages were trained by another run: their curves are its points.
            run = RunSeries(run_id)
            for stage in stages:
                run.update_stage(stage)
            self._read_reused(store, run_id, run.reused_sources())
            self.done.emit(run_id, upto)

        threading.Thread(target=work, name="stagelab-history", daemon=True).start()

    def load_reused(self, store, run_id: str, sources: dict[int, tuple[str, int]]) -> None:
        """The source points of stages that became reused while the run is followed."""
        threading.Thread(
            target=self._read_reused,
            args=(store, run_id, sources),
            name="stagelab-reused",
            daemon=True,
        ).start()

    def _read_reused(self, store, run_id: str, sources: dict[int, tuple[str, int]]) -> None:
        from app.model.run_series import read_reused
        from engine.store import queries

        if sources:
            experiment = queries.get_run(store, run_id).experiment_id
            for stage, label, series in read_reused(store, experiment, sources):
                self.reused.emit(run_id, stage, label, series)


def read_clock(store, run_id: str):
    """When steps of the run were recorded, by stage: (stage, steps, wall seconds), from
    the series of CLOCK_KEYS (the run model keeps the first that dates a stage's steps)."""
    from engine.store import series

    with store.session() as s:
        for key in CLOCK_KEYS:
            for (stage, _), block in series.read_series_blocks(
                s, run_id, key=key, fields=("steps", "walls")
            ):
                yield stage, block.steps.astype(np.float64), block.walls / 1000.0


def planned_stages(info) -> list[tuple[str, str, int]]:
    """(name, kind, steps) of each stage of a run's recorded plan, its steps counted as the
    LR preview and `stagelab run` count them (`engine.spec.plan_steps`), so the run's total
    is known from the start."""
    from engine.spec.plan_steps import recorded_plan_steps

    return recorded_plan_steps(info.plan_text, info.plan_dir)
