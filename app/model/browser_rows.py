"""The experiment browser's rows, without Qt: what each column shows and how it sorts."""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.model.formatting import duration
from engine.store.status import LIVE, RunStatus

COLUMNS = ("Name", "Status", "Created", "Duration", "Stages", "Best eval", "Tags")
STATUS_COLOURS = {
    RunStatus.RUNNING: "#0072B2",
    RunStatus.PAUSED: "#B07800",
    RunStatus.FINISHED: "#00805C",
    RunStatus.INTERRUPTED: "#D55E00",
    RunStatus.FAILED: "#D55E00",
}
# The browser's status filter, in the order a run lives through them.
STATUSES = (
    RunStatus.QUEUED,
    RunStatus.RUNNING,
    RunStatus.PAUSED,
    RunStatus.STOPPING,
    RunStatus.FINISHED,
    RunStatus.STOPPED,
    RunStatus.INTERRUPTED,
    RunStatus.FAILED,
)
# Not a stored status: the window's word for a run (or sweep) it has started whose engine
# has not claimed it yet (the store still says `queued`, or the status from before a resume).
STARTING = "starting"


@dataclass(frozen=True)
class Row:
    """One line of the table: an experiment (run_id None) or one of its runs."""

    experiment_id: str
    run_id: str | None
    texts: tuple[str, ...]
    sort_keys: tuple[object, ...]
    status: str
    search_text: str


def created_text(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))


def run_seconds(run, now_ms: int | None = None) -> float | None:
    """How long a run trained: to its end, or until now while it is live."""
    if run.started_ms is None:
        return None
    end = run.ended_ms
    if end is None:
        end = now_ms or int(time.time() * 1000)
        if run.status not in LIVE:
            end = run.heartbeat_ms or run.started_ms
    return max(end - run.started_ms, 0) / 1000


def best_text(run) -> str:
    """'accuracy 0.917 (sentiment)': the metric, its best value and the stage it is of."""
    if run.best_key is None:
        return ""
    text = f"{run.best_key.split('/', 1)[1]} {run.best_value:.3f}"
    stage = getattr(run, "best_stage_name", None)
    return f"{text} ({stage})" if stage else text


def run_row(exp, run) -> Row:
    seconds = run_seconds(run)
    stages = f"{run.stages_done}/{run.stages_total}" if run.stages_total else "—"
    return Row(
        experiment_id=exp.id,
        run_id=run.id,
        texts=(
            f"run {run.number} · {run.id}",
            run.status,
            created_text(run.created_ms),
            duration(seconds),
            stages,
            best_text(run),
            "",
        ),
        sort_keys=(
            run.number,
            run.status,
            run.created_ms,
            seconds or 0,
            run.stages_done,
            run.best_value if run.best_value is not None else float("-inf"),
            "",
        ),
        status=run.status,
        search_text=f"{run.id} {run.status}".lower(),
    )


def experiment_row(exp, runs: list) -> Row:
    """An experiment shows its newest run's status and its best run's result."""
    newest = runs[0] if runs else None
    best = max(
        (r for r in runs if r.best_value is not None),
        key=lambda r: r.best_value if _higher(r.best_key) else -r.best_value,
        default=None,
    )
    status = newest.status if newest else "no runs"
    total = sum(run_seconds(r) or 0 for r in runs)
    stages = (
        f"{newest.stages_done}/{newest.stages_total}" if newest and newest.stages_total else "—"
    )
    return Row(
        experiment_id=exp.id,
        run_id=None,
        texts=(
            exp.name,
            status,
            created_text(exp.created_ms),
            duration(total) if runs else "—",
            stages,
            best_text(best) if best else "",
            ", ".join(exp.tags),
        ),
        sort_keys=(
            exp.name.lower(),
            status,
            exp.created_ms,
            total,
            newest.stages_done if newest else 0,
            (best.best_value if best else float("-inf")),
            ", ".join(exp.tags),
        ),
        status=status,
        search_text=f"{exp.name} {exp.id} {' '.join(exp.tags)} {exp.notes}".lower(),
    )


def _higher(key: str | None) -> bool:
    from engine.store.browse import HIGHER_IS_BETTER

    return bool(key) and key.split("/", 1)[1] in HIGHER_IS_BETTER


def table(experiments, runs) -> list[tuple[Row, list[Row]]]:
    """(experiment row, its run rows newest first) for every experiment, newest first."""
    by_experiment: dict[str, list] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment_id, []).append(run)
    out = []
    for exp in sorted(experiments, key=lambda e: e.created_ms, reverse=True):
        mine = sorted(by_experiment.get(exp.id, []), key=lambda r: r.number, reverse=True)
        out.append((experiment_row(exp, mine), [run_row(exp, r) for r in mine]))
    return out
