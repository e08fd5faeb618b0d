"""The experiment store's tables, MLflow style: `Sql*` classes, named constraints and
indexes, millisecond timestamps, a latest-value table so listings stay fast.

The Alembic migrations in `migrations/versions/` create exactly this schema; a test
compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.store.status import QueueStatus, RunStatus, StageStatus, SweepStatus, TrialStatus

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The CHECK constraints list the enums' values in their declared order (the migrations
# hold the same lists as literals).
RUN_STATUSES = tuple(RunStatus)
STAGE_STATUSES = tuple(StageStatus)
EVENT_LEVELS = ("debug", "info", "warning", "error")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    """Base of every table, with the naming convention of constraints."""

    metadata = MetaData(naming_convention=NAMING)


class SqlExperiment(Base):
    """An experiment: a plan, its lineage, notes and tags."""

    __tablename__ = "experiments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    plan_text: Mapped[str] = mapped_column(Text, nullable=False)
    plan_dir: Mapped[str] = mapped_column(Text, nullable=False)
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("experiments.id", ondelete="SET NULL")
    )
    notes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (Index("ix_experiments_name", "name"),)


class SqlExperimentTag(Base):
    """A tag of an experiment."""

    __tablename__ = "experiment_tags"
    experiment_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("experiments.id", ondelete="CASCADE")
    )
    tag: Mapped[str] = mapped_column(String(100))
    __table_args__ = (PrimaryKeyConstraint("experiment_id", "tag", name="pk_experiment_tags"),)


class SqlRun(Base):
    """One execution of an experiment's plan by an engine process."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    plan_text: Mapped[str] = mapped_column(Text, nullable=False)
    plan_dir: Mapped[str] = mapped_column(Text, nullable=False)
    gpus: Mapped[str] = mapped_column(String(100), nullable=False, default="cpu")
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    heartbeat_ms: Mapped[int | None] = mapped_column(BigInteger)
    socket_address: Mapped[str | None] = mapped_column(Text)
    run_dir: Mapped[str] = mapped_column(Text, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    environment: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    started_ms: Mapped[int | None] = mapped_column(BigInteger)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    resume_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    # False: `--no-cache`, every stage of the run trains even if a finished one matches.
    use_cache: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default="1"
    )
    # Processes per node (torchrun's --nproc-per-node); a resume starts as many.
    nproc: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    # The target it trains on (`stagelab target ls`); NULL is this machine.
    target: Mapped[str | None] = mapped_column(String(64))
    # Where and how it trained, JSON: kind, host, processes, nodes, gpus, remote_workspace,
    # remote_run_id, slurm {job_id, node_list, script, partition, reason}; all optional.
    placement: Mapped[str] = mapped_column(Text, nullable=False, default="{}", server_default="{}")
    note: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    __table_args__ = (
        UniqueConstraint("experiment_id", "number", name="uq_runs_experiment_id_number"),
        CheckConstraint(f"status IN ({_in(RUN_STATUSES)})", name="status"),
        Index("ix_runs_experiment_id", "experiment_id"),
        Index("ix_runs_status", "status"),
    )


class SqlRunTag(Base):
    """A tag of a run (`stagelab tag RUN NAME`, the runs table's search `tag:NAME`)."""

    __tablename__ = "run_tags"
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "tag", name="pk_run_tags"),
        Index("ix_run_tags_tag", "tag"),
    )


class SqlTarget(Base):
    """A place runs can train: `ssh://…`, `slurm://`, `slurm+ssh://…` and its options
    (JSON: workdir, python, identity, ssh_options, slurm settings)."""

    __tablename__ = "targets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    options: Mapped[str] = mapped_column(Text, nullable=False, default="{}", server_default="{}")
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SqlStage(Base):
    """A stage of a run: its status, progress and output."""

    __tablename__ = "stages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )
    idx: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    started_ms: Mapped[int | None] = mapped_column(BigInteger)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    global_step_start: Mapped[int | None] = mapped_column(Integer)
    steps_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    output_dir: Mapped[str | None] = mapped_column(Text)
    final_metrics: Mapped[str | None] = mapped_column(Text)
    # What the stage's result depends on (engine/runtime/fingerprint.py); a finished stage
    # with the same fingerprint elsewhere in the workspace is reused instead of trained.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The stage this one reused (status 'reused'). No foreign key: the link outlives the
    # source run, whose output folder is kept while it is referenced.
    reused_run_id: Mapped[str | None] = mapped_column(String(32))
    reused_stage_idx: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        UniqueConstraint("run_id", "idx", name="uq_stages_run_id_idx"),
        CheckConstraint(f"status IN ({_in(STAGE_STATUSES)})", name="status"),
        Index("ix_stages_fingerprint", "fingerprint"),
        Index("ix_stages_reused_run_id", "reused_run_id"),
    )


class SqlMetricChunk(Base):
    """A run of consecutive points of one series (up to `series.CHUNK_POINTS`), as packed
    little-endian arrays: one row per chunk instead of one per point makes opening a run
    with millions of points a few hundred blob reads (TensorBoard and Aim store series the
    same way). IEEE floats keep NaN and ±inf, which a REAL column cannot (SQLite stores NaN
    as NULL). Chunks of a series never overlap: `first_step` orders them."""

    __tablename__ = "metric_chunks"
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id", ondelete="CASCADE"))
    stage_idx: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(100))
    first_step: Mapped[int] = mapped_column(Integer)
    last_step: Mapped[int] = mapped_column(Integer, nullable=False)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    # Stream positions (docs/protocol.md) of the chunk's points: a catch-up reads only the
    # chunks whose range reaches past the client's position. 0 = written without one.
    min_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    max_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # Blobs last, steps and values first: SQLite walks overflow pages in column order, so a
    # plot's read of (steps, vals) never touches the other two.
    steps: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # int64
    vals: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # float64
    seqs: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # int64
    walls: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # int64, ms
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "stage_idx", "key", "first_step", name="pk_metric_chunks"),
        CheckConstraint("n > 0 AND first_step <= last_step", name="extent"),
        Index("ix_metric_chunks_run_id_key", "run_id", "key"),
        Index("ix_metric_chunks_run_id_max_seq", "run_id", "max_seq"),
    )


class SqlLatestMetric(Base):
    """The newest point of each series, so listings never scan the metric table."""

    __tablename__ = "latest_metrics"
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id", ondelete="CASCADE"))
    stage_idx: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    # NULL is NaN: SQLite has no NaN (±inf it keeps).
    value: Mapped[float | None] = mapped_column(Float)
    wall_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "stage_idx", "key", name="pk_latest_metrics"),
        # The runs table and its search read one metric for every run.
        Index("ix_latest_metrics_key_run_id", "key", "run_id"),
    )


class SqlCheckpoint(Base):
    """A checkpoint folder of a run."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )
    stage_idx: Mapped[int] = mapped_column(Integer, nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        UniqueConstraint(
            "run_id", "stage_idx", "step", name="uq_checkpoints_run_id_stage_idx_step"
        ),
    )


class SqlEvent(Base):
    """Something that happened in a run: stage changes, evaluations, log lines, errors."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )
    stage_idx: Mapped[int | None] = mapped_column(Integer)
    wall_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    level: Mapped[str] = mapped_column(String(10), nullable=False)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int | None] = mapped_column(BigInteger)  # as on metrics
    __table_args__ = (
        CheckConstraint(f"level IN ({_in(EVENT_LEVELS)})", name="level"),
        Index("ix_events_run_id_id", "run_id", "id"),
        Index("ix_events_run_id_seq", "run_id", "seq"),
    )


SWEEP_STATUSES = tuple(SweepStatus)
TRIAL_STATUSES = tuple(TrialStatus)


class SqlSweep(Base):
    """A sweep: trials of an experiment's plan with settings drawn from a space, toward an
    objective. The sweep process owns it (pid, host, heartbeat) like an engine its run."""

    __tablename__ = "sweeps"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False
    )
    spec_text: Mapped[str] = mapped_column(Text, nullable=False)  # the sweep section, JSON
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    gpus: Mapped[str] = mapped_column(String(100), nullable=False)
    parallel: Mapped[int] = mapped_column(Integer, nullable=False)
    use_cache: Mapped[bool] = mapped_column(Boolean, nullable=False)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    heartbeat_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    started_ms: Mapped[int | None] = mapped_column(BigInteger)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(SWEEP_STATUSES)})", name="status"),
        Index("ix_sweeps_experiment_id", "experiment_id"),
    )


class SqlSweepTrial(Base):
    """A trial of a sweep: its parameters, its run, its status and objective value."""

    __tablename__ = "sweep_trials"
    sweep_id: Mapped[str] = mapped_column(String(32), ForeignKey("sweeps.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="SET NULL")
    )
    params: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: path -> value
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    objective: Mapped[float | None] = mapped_column(Float)
    intermediate: Mapped[str | None] = mapped_column(Text)  # JSON: [[step, value], ...]
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        PrimaryKeyConstraint("sweep_id", "number", name="pk_sweep_trials"),
        CheckConstraint(f"status IN ({_in(TRIAL_STATUSES)})", name="status"),
    )


QUEUE_STATUSES = tuple(QueueStatus)


class SqlQueueItem(Base):
    """A plan waiting in the queue (`stagelab queue add`), run in `position` order by
    `stagelab queue run`; its run once started."""

    __tablename__ = "queue_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    plan_path: Mapped[str] = mapped_column(Text, nullable=False)
    target: Mapped[str | None] = mapped_column(String(64))
    gpus: Mapped[str] = mapped_column(
        String(100), nullable=False, default="cpu", server_default="cpu"
    )
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    run_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    started_ms: Mapped[int | None] = mapped_column(BigInteger)
    ended_ms: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(QUEUE_STATUSES)})", name="status"),
        Index("ix_queue_items_status_position", "status", "position"),
    )
