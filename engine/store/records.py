"""Plain records returned by the queries: no ORM object ever leaves a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class StoreError(LookupError):
    """A lookup in the store failed; the message says what to do."""


class NotFound(StoreError):
    """No experiment or run matches."""


class Ambiguous(StoreError):
    """More than one experiment or run matches a prefix."""


class RunBusy(StoreError):
    """The run is owned by a live engine process."""


@dataclass(frozen=True)
class RunSummary:
    """A run inside an experiment listing."""

    id: str
    number: int
    status: str
    created_ms: int
    ended_ms: int | None


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment."""

    id: str
    name: str
    plan_text: str
    plan_dir: str
    parent_id: str | None
    notes: str
    tags: tuple[str, ...]
    created_ms: int
    updated_ms: int
    runs: tuple[RunSummary, ...] = ()


@dataclass(frozen=True)
class RunInfo:
    """A run; `status` is the effective one (`interrupted` if its process is gone)."""

    id: str
    experiment_id: str
    number: int
    status: str
    stored_status: str
    plan_text: str
    plan_dir: str
    gpus: str
    pid: int | None
    host: str | None
    heartbeat_ms: int | None
    socket_address: str | None
    run_dir: str
    error: str | None
    environment: dict[str, Any] | None
    created_ms: int
    started_ms: int | None
    ended_ms: int | None
    resume_count: int
    use_cache: bool = True
    nproc: int = 1  # processes per node
    target: str | None = None  # the target's name; None is this machine
    # Where and how it trained (kind, host, processes, nodes, gpus, remote_workspace,
    # remote_run_id, slurm); `queries.set_placement` merges into it.
    placement: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()  # sorted (`stagelab tag`)
    note: str = ""  # free text (`stagelab note`)


@dataclass(frozen=True)
class TargetInfo:
    """A stored target: its URL and options (engine/remote/targets.py reads them)."""

    name: str
    url: str
    options: dict[str, Any]
    created_ms: int


@dataclass(frozen=True)
class StageInfo:
    """A stage of a run."""

    idx: int
    name: str
    kind: str
    status: str
    started_ms: int | None
    ended_ms: int | None
    global_step_start: int | None
    steps_done: int
    total_steps: int | None
    output_dir: str | None
    final_metrics: dict[str, float] = field(default_factory=dict)
    fingerprint: str | None = None
    # {"run": id, "stage": index} of the finished stage this one reused, else None.
    reused_from: dict[str, Any] | None = None


@dataclass(frozen=True)
class MetricInfo:
    """The latest point of a series."""

    stage_idx: int
    key: str
    step: int
    value: float
    wall_ms: int


@dataclass(frozen=True)
class CheckpointInfo:
    """A recorded checkpoint."""

    stage_idx: int
    step: int
    path: str
    created_ms: int


@dataclass(frozen=True)
class EventInfo:
    """An event of a run."""

    id: int
    stage_idx: int | None
    wall_ms: int
    level: str
    kind: str
    message: str
    data: dict[str, Any] | None
