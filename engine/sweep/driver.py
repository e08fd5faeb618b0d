"""The sweep driver (engine/sweep/process.py runs it): asks Optuna for a trial's settings,
records the trial as a run of the sweep's experiment, starts its engine, follows it
through the store (reporting the objective's evaluations to the pruner), and tells Optuna
the result.

The store is the record; Optuna's study lives in memory and is rebuilt from the recorded
trials when a killed sweep resumes. A trial left running by a killed sweep is followed
again if its engine still lives, or resumed from its checkpoint if the engine died too; a
trial whose engine alone was killed is resumed the same way (at most `MAX_RESUMES` times).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import optuna

from engine.launch.runs import start_engine, start_run
from engine.spec.plan import parse_plan_text
from engine.spec.sweep import Sweep, grid
from engine.store import Store, Workspace, queries
from engine.store.status import LIVE, RESUMABLE, STAGE_DONE, RunStatus, SweepStatus, TrialStatus
from engine.sweep.sampling import pruner, sampler
from engine.sweep.space import distributions, trial_plan_text

POLL_S = 0.5
MAX_RESUMES = 3
# A trial's run that has ended one way or the other (interrupted runs are resumed).
DONE_RUN = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED})

log = logging.getLogger("engine.sweep")


@dataclass
class Active:
    """A trial whose engine is running."""

    number: int
    run_id: str
    trial: optuna.trial.Trial
    proc: subprocess.Popen | None = None
    reported: dict[int, float] = field(default_factory=dict)
    pruned: bool = False
    stopping: bool = False
    resumes: int = 0
    # The run's resume count when we last resumed it: until its engine claims the run (and
    # counts one more), the record still shows how the previous engine ended.
    resumed_from: int | None = None


class SweepDriver:
    """Runs one sweep to its end (target, budget, time, grid exhausted) or until stopped."""

    def __init__(self, workspace: Workspace, store: Store, sweep_id: str):
        self.workspace, self.store = workspace, store
        info = queries.get_sweep(store, sweep_id)
        self.info = info
        self.sweep = Sweep.model_validate(info.spec)
        experiment = queries.get_experiment(store, info.experiment_id)
        self.experiment = experiment
        self.base = parse_plan_text(experiment.plan_text)
        self.plan_dir = experiment.plan_dir
        names = [s["name"] for s in self.base["stages"]]
        self.objective_idx = names.index(self.sweep.objective.stage)
        self.dists = distributions(self.sweep)
        self.study = optuna.create_study(
            direction="maximize" if self.sweep.objective.goal == "max" else "minimize",
            sampler=sampler(self.sweep),
            pruner=pruner(self.sweep),
        )
        self.active: dict[int, Active] = {}
        self.started = 0
        self.stop_requested = False
        self.reason = ""
        self.t0 = time.monotonic()
        self.gpus = [g for g in info.gpus.split(",") if g and g != "cpu"] or ["cpu"]
        # Stages before the first one the space touches are the same in every trial: the
        # stage cache trains them once.
        touched = [
            names.index(p.split(".")[1]) for p in self.sweep.space if p.split(".")[1] in names
        ]
        self.shared_stages = min(touched, default=0)

    # ---- the record → the study -------------------------------------------------------
    def _rebuild(self) -> list[Any]:
        """Tell the study every recorded trial; returns the trials left running."""
        left = []
        for t in self.info.trials:
            params = {p: v for p, v in t.params.items() if p in self.dists}
            if t.status in (TrialStatus.RUNNING, TrialStatus.STOPPED):
                # A trial stopped with its sweep (Stop, Ctrl-C) continues from its
                # checkpoint when the sweep resumes; it is not a spent trial.
                left.append(t)
                continue
            state = {
                TrialStatus.FINISHED: optuna.trial.TrialState.COMPLETE,
                TrialStatus.PRUNED: optuna.trial.TrialState.PRUNED,
            }.get(t.status, optuna.trial.TrialState.FAIL)
            value = t.objective if state == optuna.trial.TrialState.COMPLETE else None
            if value is not None and value != value:  # NaN: no value Optuna accepts
                state, value = optuna.trial.TrialState.FAIL, None
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions={p: self.dists[p] for p in params},
                    value=value,
                    state=state,
                    intermediate_values=dict(t.intermediate),
                )
            )
        self.started = len(self.info.trials)
        return left

    # ---- starting trials -----------------------------------------------------------
    def _grid_left(self) -> list[dict[str, Any]]:
        seen = [
            {p: t.params.get(p) for p in self.sweep.space}
            for t in queries.get_sweep(self.store, self.info.id).trials
        ]
        return [combo for combo in grid(self.sweep.space) if combo not in seen]

    def _budget_left(self) -> bool:
        if self.stop_requested or self.reason:
            return False
        if self.started >= self.sweep.budget.trials:
            self.reason = f"budget of {self.sweep.budget.trials} trials spent"
            return False
        minutes = self.sweep.budget.minutes
        if minutes is not None and time.monotonic() - self.t0 > minutes * 60:
            self.reason = f"time limit of {minutes:g} minutes reached"
            return False
        if self.sweep.sampler == "grid" and not self._grid_left():
            self.reason = "every combination of the grid was tried"
            return False
        return True

    def _shared_ready(self) -> bool:
        """Whether a trial has its shared stages (those before the first swept one) done,
        so parallel trials reuse them instead of each training them at once."""
        if self.shared_stages == 0 or not self.info.use_cache:
            return True
        for t in queries.get_sweep(self.store, self.info.id).trials:
            stages = queries.list_stages(self.store, t.run_id) if t.run_id else []
            done = [s for s in stages[: self.shared_stages] if s.status in STAGE_DONE]
            if len(done) == self.shared_stages:
                return True
        return False

    def _free_gpu(self) -> str:
        if self.gpus == ["cpu"]:
            return "cpu"
        busy = {a.gpu for a in self.active.values() if hasattr(a, "gpu")}
        return next((g for g in self.gpus if g not in busy), self.gpus[0])

    def _start_trial(self) -> None:
        if self.sweep.sampler == "grid":
            self.study.enqueue_trial(self._grid_left()[0])
        trial = self.study.ask(self.dists)
        params = dict(trial.params)
        number = self.started
        self.started += 1
        gpu = self._free_gpu()
        started = start_run(
            self.workspace,
            self.store,
            plan_text=trial_plan_text(self.base, params, number),
            plan_dir=self.plan_dir,
            name=self.experiment.name,
            gpus=gpu,
            use_cache=self.info.use_cache,
            experiment_id=self.experiment.id,
            source=f"trial {number}",
        )
        if started.problems:  # the space's checks let through a plan that is not valid
            raise ValueError(f"trial {number}'s plan {params}: " + "; ".join(started.problems))
        run_id, proc = started.run_id, started.proc
        queries.add_trial(self.store, self.info.id, number, params, run_id)
        active = Active(number, run_id, trial, proc)
        active.gpu = gpu  # type: ignore[attr-defined]
        self.active[number] = active
        print(f"trial {number}: run {run_id} {_show(params)}", flush=True)

    def _adopt(self, t: Any) -> None:
        """Follow (or resume) a trial left running by a killed sweep process, or stopped
        with its sweep."""
        if t.status != TrialStatus.RUNNING:
            queries.update_trial(self.store, self.info.id, t.number, status=TrialStatus.RUNNING)
        self.study.enqueue_trial({p: v for p, v in t.params.items() if p in self.dists})
        trial = self.study.ask(self.dists)
        active = Active(t.number, t.run_id, trial)
        for step, value in t.intermediate:
            trial.report(value, step)
            active.reported[step] = value
        self.active[t.number] = active
        run = queries.get_run(self.store, t.run_id)
        if run.status in RESUMABLE:
            self._resume(active, "the sweep was interrupted")
        print(f"trial {t.number}: run {t.run_id} continues", flush=True)

    def _resume(self, active: Active, why: str) -> None:
        active.resumes += 1
        active.resumed_from = queries.get_run(self.store, active.run_id).resume_count
        active.proc = start_engine(self.workspace, active.run_id, resume=True, detach=True)
        print(f"trial {active.number}: resumed from its checkpoint ({why})", flush=True)

    # ---- following trials ----------------------------------------------------------
    def _report(self, active: Active) -> None:
        steps, values = queries.read_series(
            self.store, active.run_id, self.sweep.objective.key, stage_idx=self.objective_idx
        )
        new = [(s, v) for s, v in zip(steps, values, strict=True) if s not in active.reported]
        if not new:
            return
        for step, value in new:
            active.reported[step] = value
            if value == value:  # Optuna refuses NaN
                active.trial.report(value, step)
        queries.update_trial(
            self.store, self.info.id, active.number, intermediate=sorted(active.reported.items())
        )
        if not active.stopping and active.trial.should_prune():
            active.pruned = active.stopping = True
            self._signal(active, signal.SIGTERM)
            print(f"trial {active.number}: pruned (worse than the median so far)", flush=True)

    def _signal(self, active: Active, sig: int) -> None:
        run = queries.get_run(self.store, active.run_id)
        pid = run.pid if run.status in LIVE else None
        if pid is None and active.proc is not None and active.proc.poll() is None:
            pid = active.proc.pid  # still starting: it has not claimed the run yet
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _final_value(self, run_id: str) -> float | None:
        stages = queries.list_stages(self.store, run_id)
        metrics = stages[self.objective_idx].final_metrics if stages else {}
        value = metrics.get(self.sweep.objective.key)
        return float(value) if value is not None else None

    def _check(self, active: Active) -> bool:
        """Follow one trial; True once it has ended."""
        starting = active.proc is not None and active.proc.poll() is None
        if not starting:
            active.proc = None  # reaped (or not ours); the store says how it ended
        self._report(active)
        run = queries.get_run(self.store, active.run_id)
        status = run.status
        if active.resumed_from is not None:
            if run.resume_count > active.resumed_from:
                active.resumed_from = None  # claimed: the record is the new engine's
            elif starting:
                return False  # still "stopped" or "failed" from before the resume
            else:
                status = RunStatus.INTERRUPTED  # the resumed engine died before it claimed the run
        if status in (RunStatus.QUEUED, RunStatus.INTERRUPTED) and starting:
            # Our engine process lives but has not claimed the run yet (it takes seconds to
            # import torch): the store still shows the engine before it.
            return False
        if status == RunStatus.QUEUED:
            status = RunStatus.INTERRUPTED  # the engine died before it claimed the run
            if active.stopping:  # stopped while it started: say so in the run too
                queries.set_run_status(self.store, active.run_id, RunStatus.STOPPED)
        if status == RunStatus.INTERRUPTED and not active.stopping:
            if active.resumes < MAX_RESUMES:
                self._resume(active, "its engine was gone")
                return False
            status = RunStatus.FAILED
        if status == RunStatus.INTERRUPTED and active.stopping:
            status = RunStatus.STOPPED
        if status not in DONE_RUN:
            return False
        self._report(active)
        if active.pruned:
            self.study.tell(active.trial, state=optuna.trial.TrialState.PRUNED)
            queries.update_trial(self.store, self.info.id, active.number, status=TrialStatus.PRUNED)
        elif status == RunStatus.FINISHED:
            value = self._final_value(active.run_id)
            if value is None or value != value:
                self.study.tell(active.trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(active.trial, value)
            queries.update_trial(
                self.store,
                self.info.id,
                active.number,
                status=TrialStatus.FINISHED,
                objective=value,
            )
            print(f"trial {active.number}: {self.sweep.objective.key} = {value}", flush=True)
            if self.sweep.objective.reached(value) and not self.reason:
                self.reason = (
                    f"trial {active.number} reached the target "
                    f"{self.sweep.objective.key} {'≥' if self.sweep.objective.goal == 'max' else '≤'} "
                    f"{self.sweep.objective.target:g}"
                )
                self._stop_others(active.number)
        else:
            self.study.tell(active.trial, state=optuna.trial.TrialState.FAIL)
            queries.update_trial(
                self.store,
                self.info.id,
                active.number,
                status=TrialStatus.STOPPED if status == RunStatus.STOPPED else TrialStatus.FAILED,
            )
            print(f"trial {active.number}: {status}", flush=True)
        return True

    def _stop_others(self, number: int) -> None:
        for other in self.active.values():
            if other.number != number and not other.stopping:
                other.stopping = True
                self._signal(other, signal.SIGTERM)

    # ---- the loop ------------------------------------------------------------------
    def run(self) -> str:
        """Run until the end; returns the sweep's final status."""
        for t in self._rebuild():
            self._adopt(t)
        beat = 0.0
        while True:
            while len(self.active) < max(1, self.info.parallel) and self._budget_left():
                if self.active and not self._shared_ready():
                    break  # the first trial trains the shared stages; the rest reuse them
                self._start_trial()
            for number in list(self.active):
                if self._check(self.active[number]):
                    del self.active[number]
            if self.stop_requested:
                for active in self.active.values():
                    if not active.stopping:
                        active.stopping = True
                        self._signal(active, signal.SIGTERM)
            if not self.active and not self._budget_left():
                break
            if time.monotonic() - beat > 2:
                queries.sweep_heartbeat(self.store, self.info.id)
                beat = time.monotonic()
            time.sleep(POLL_S)
        if self.stop_requested:
            return SweepStatus.STOPPED
        return SweepStatus.FINISHED


def _show(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{p}={v:.4g}" if isinstance(v, float) else f"{p}={v}" for p, v in params.items()
    )
