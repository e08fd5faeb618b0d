"""The Sweep view's model (no Qt): a sweep's trials as rows, sortable by objective, status
or a parameter; the objective over trials with the running best and the target; one
parameter against the objective; the best trial's plan. The widget refreshes it from the
store while the sweep runs and redraws when `refresh` says something changed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.model.browser_rows import STARTING
from engine.store.status import RunStatus, StageStatus, SweepStatus, TrialStatus

STATUS_ORDER = {
    TrialStatus.FINISHED: 0,
    TrialStatus.RUNNING: 1,
    TrialStatus.PRUNED: 2,
    TrialStatus.STOPPED: 3,
    TrialStatus.FAILED: 4,
}
# A sweep whose process is gone reads `interrupted` (its effective status, as a run's).
SWEEP_RESUMABLE = frozenset({RunStatus.INTERRUPTED, SweepStatus.STOPPED, SweepStatus.FAILED})


@dataclass(frozen=True)
class TrialRow:
    """One trial as the table shows it."""

    number: int
    run_id: str | None
    status: str
    objective: float | None
    params: dict[str, Any]
    reused: tuple[str, ...]
    wall_s: float | None
    last_value: float | None = None  # the last evaluation of a trial without a result
    intermediate: tuple[tuple[int, float], ...] = ()  # (step, value) of each evaluation

    @property
    def shown_value(self) -> float | None:
        """The value a plot shows: the objective, else the last evaluation (pruned,
        stopped and running trials)."""
        return self.objective if self.objective is not None else self.last_value


def short_path(path: str) -> str:
    """'stages.sentiment.optimizer.lr' → 'sentiment.optimizer.lr' (the column title)."""
    parts = path.split(".")
    return ".".join(parts[1:]) if parts[0] == "stages" else path


def _sort_value(value: Any) -> tuple[int, Any]:
    """Numbers before text, None (and NaN) last: sortable whatever a column holds."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


class SweepViewModel:
    """A sweep and its trials, read from the store by `refresh`."""

    def __init__(self, store_factory: Callable[[], Any]):
        self.store = store_factory
        self.sweep_id: str | None = None
        self.info: Any = None
        self.rows: list[TrialRow] = []
        self._stamp: Any = None
        # Set by the window between starting a sweep process and its claiming the sweep:
        # the record still reads `interrupted` (no owner yet) or as it ended last time.
        self.starting = False

    # -- reading ---------------------------------------------------------------------------
    def open(self, sweep_id: str) -> None:
        """Show this sweep (read at once)."""
        self.sweep_id, self._stamp = sweep_id, None
        self.refresh()

    def refresh(self) -> bool:
        """Read the sweep again; True if anything shown changed."""
        if self.sweep_id is None:
            return False
        from engine.store import queries

        store = self.store()
        info = queries.get_sweep(store, self.sweep_id)
        rows = []
        for t in info.trials:
            stages = queries.list_stages(store, t.run_id) if t.run_id else []
            run = queries.get_run(store, t.run_id) if t.run_id else None
            wall = (
                (run.ended_ms - run.started_ms) / 1000
                if run is not None and run.ended_ms and run.started_ms
                else None
            )
            rows.append(
                TrialRow(
                    number=t.number,
                    run_id=t.run_id,
                    status=t.status,
                    objective=t.objective,
                    params=dict(t.params),
                    reused=tuple(s.name for s in stages if s.status == StageStatus.REUSED),
                    wall_s=wall,
                    last_value=t.intermediate[-1][1] if t.intermediate else None,
                    intermediate=tuple((int(a), float(b)) for a, b in t.intermediate),
                )
            )
        stamp = (info.status, info.stop_reason, tuple(rows))
        changed = stamp != self._stamp
        self.info, self.rows, self._stamp = info, rows, stamp
        return changed

    @property
    def live(self) -> bool:
        """Whether the sweep is still running or starting (the view keeps refreshing)."""
        return self.info is not None and (self.info.status == SweepStatus.RUNNING or self.starting)

    @property
    def status(self) -> str:
        """The sweep's status as a person reads it: 'starting' until its process claims it."""
        if self.info is None:
            return ""
        if self.starting and self.info.status != SweepStatus.RUNNING:
            return STARTING
        return self.info.status

    @property
    def can_stop(self) -> bool:
        """Whether Stop applies: the sweep's process runs."""
        return self.info is not None and self.info.status == SweepStatus.RUNNING

    @property
    def can_resume(self) -> bool:
        """Whether Resume applies: interrupted, stopped or failed, and not starting."""
        return self.info is not None and not self.starting and self.info.status in SWEEP_RESUMABLE

    @property
    def objective(self) -> dict[str, Any]:
        """The sweep's objective: stage, metric, goal, target."""
        return dict(self.info.spec["objective"]) if self.info else {}

    @property
    def metric_label(self) -> str:
        """The objective as a column title: 'sentiment accuracy ↑'."""
        obj = self.objective
        if not obj:
            return "objective"
        arrow = "↑" if obj.get("goal", "max") == "max" else "↓"
        return f"{obj['stage']} {obj['metric']} {arrow}"

    @property
    def target(self) -> float | None:
        """The target value, if the sweep has one."""
        return self.objective.get("target")

    @property
    def param_paths(self) -> list[str]:
        """The space's settings paths, in the sweep's order."""
        return list(self.info.spec.get("space", {})) if self.info else []

    def is_log(self, path: str) -> bool:
        """Whether a parameter is drawn on a log scale."""
        dist = self.info.spec.get("space", {}).get(path, {}) if self.info else {}
        return "log_uniform" in dist or "log_int" in dist

    def is_categorical(self, path: str) -> bool:
        """Whether a parameter is a choice of values that are not all numbers."""
        dist = self.info.spec.get("space", {}).get(path, {}) if self.info else {}
        return "choice" in dist and not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in dist["choice"]
        )

    def choices(self, path: str) -> list[Any]:
        """The values of a choice parameter."""
        return list(self.info.spec["space"][path].get("choice", [])) if self.info else []

    # -- the table ---------------------------------------------------------------------------
    def sorted_rows(self, column: str = "number", descending: bool = False) -> list[TrialRow]:
        """Rows by 'number', 'status', 'objective', 'wall_s' or a parameter path. By the
        objective, the best trial comes first unless `descending` says otherwise."""
        if column == "status":
            key = lambda r: (STATUS_ORDER.get(r.status, 9), r.number)  # noqa: E731
        elif column == "objective":
            better_first = self.objective.get("goal", "max") == "max"

            def key(r: TrialRow) -> tuple:
                rank, value = _sort_value(r.objective)
                return (rank, -value if better_first and rank == 0 else value, r.number)

        elif column in ("number", "wall_s"):
            key = lambda r: _sort_value(getattr(r, column))  # noqa: E731
        else:
            key = lambda r: _sort_value(r.params.get(column))  # noqa: E731
        return sorted(self.rows, key=key, reverse=descending)

    # -- the plots ---------------------------------------------------------------------------
    def objective_points(self) -> list[tuple[int, float, str]]:
        """(trial number, value, status) of every trial with a value (a trial without a
        result shows its last evaluation)."""
        return [
            (r.number, r.shown_value, r.status)
            for r in self.rows
            if r.shown_value is not None and not math.isnan(r.shown_value)
        ]

    def running_best(self) -> tuple[list[int], list[float]]:
        """The best objective so far after each finished trial (a step line)."""
        goal_max = self.objective.get("goal", "max") == "max"
        xs, ys, best = [], [], None
        for r in sorted(self.rows, key=lambda r: r.number):
            value = r.objective
            if r.status == TrialStatus.FINISHED and value is not None and not math.isnan(value):
                if best is None or (value > best if goal_max else value < best):
                    best = value
            if best is not None:
                xs.append(r.number)
                ys.append(best)
        return xs, ys

    def scatter(self, path: str) -> tuple[list[float], list[float], list[str]]:
        """A parameter (x) against the objective (y) of trials with a value; a categorical
        parameter is placed at the index of its value in the choice list."""
        choices = self.choices(path) if self.is_categorical(path) else None
        xs, ys, statuses = [], [], []
        for r in self.rows:
            shown = r.shown_value
            if shown is None or math.isnan(shown) or path not in r.params:
                continue
            value = r.params[path]
            xs.append(float(choices.index(value)) if choices is not None else float(value))
            ys.append(shown)
            statuses.append(r.status)
        return xs, ys, statuses

    def trial_curves(self) -> list[tuple[int, str, list[int], list[float]]]:
        """(trial number, status, steps, values) of the objective's evaluations of every
        trial with at least one, in trial order."""
        return [
            (
                r.number,
                r.status,
                [int(s) for s, _ in r.intermediate],
                [float(v) for _, v in r.intermediate],
            )
            for r in sorted(self.rows, key=lambda r: r.number)
            if r.intermediate
        ]

    def running_loss(self, max_points: int = 600) -> list[tuple[int, list[int], list[float]]]:
        """(trial number, steps, values) of the training loss of the objective stage of each
        running trial, read from the store."""
        if self.info is None:
            return []
        from engine.store import queries

        store, stage = self.store(), self.objective.get("stage")
        found = []
        for r in self.rows:
            if r.status != TrialStatus.RUNNING or r.run_id is None:
                continue
            names = [s.name for s in queries.list_stages(store, r.run_id)]
            if stage not in names:
                continue
            steps, values = queries.read_series(
                store, r.run_id, "train/loss", stage_idx=names.index(stage), max_points=max_points
            )
            found.append((r.number, [int(s) for s in steps], values))
        return found

    # -- actions -----------------------------------------------------------------------------
    def best(self) -> TrialRow | None:
        """The finished trial with the best objective."""
        from engine.store.sweeps import best_trial

        if self.info is None:
            return None
        found = best_trial(self.info)
        return next((r for r in self.rows if found and r.number == found.number), None)

    def plan_of(self, row: TrialRow) -> tuple[str, str, str]:
        """(plan text, plan folder, name) of a trial's run, to open in the editor."""
        from engine.store import queries

        run = queries.get_run(self.store(), row.run_id)
        exp = queries.get_experiment(self.store(), run.experiment_id)
        return run.plan_text, run.plan_dir, f"{exp.name} · trial {row.number}"

    def summary(self) -> str:
        """One line: status, why it ended, trials, best."""
        if self.info is None:
            return "No sweep selected."
        best = self.best()
        parts = [f"Sweep {self.info.id}: {self.status}"]
        if self.info.stop_reason and self.status == self.info.status:
            parts[0] += f" ({self.info.stop_reason})"
        parts.append(f"{len(self.rows)} trial{'s' * (len(self.rows) != 1)}")
        if best is not None:
            parts.append(
                f"best: trial {best.number}, {self.objective['metric']} {best.objective:.4g}"
            )
        return " · ".join(parts)
