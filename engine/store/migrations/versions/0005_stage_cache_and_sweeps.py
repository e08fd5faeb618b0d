"""Stage cache and sweeps: a fingerprint per stage and where a reused stage came from,
the run's cache choice, and the sweeps with their trials.

Revision ID: 0005_stage_cache_and_sweeps
Revises: 0004_metric_chunks
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_stage_cache_and_sweeps"
down_revision = "0004_metric_chunks"
branch_labels = None
depends_on = None

SWEEP_STATUSES = "'running', 'finished', 'stopped', 'failed'"
TRIAL_STATUSES = "'running', 'finished', 'pruned', 'failed', 'stopped'"


def upgrade() -> None:
    with op.batch_alter_table("stages") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
        # No foreign key: a reused stage keeps saying where it came from after the source
        # run is deleted (its output folder is kept while referenced).
        batch.add_column(sa.Column("reused_run_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("reused_stage_idx", sa.Integer(), nullable=True))
        batch.create_index("ix_stages_fingerprint", ["fingerprint"])
        batch.create_index("ix_stages_reused_run_id", ["reused_run_id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("use_cache", sa.Boolean(), nullable=False, server_default="1"))
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("spec_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("gpus", sa.String(100), nullable=False),
        sa.Column("parallel", sa.Integer(), nullable=False),
        sa.Column("use_cache", sa.Boolean(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("heartbeat_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=True),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"status IN ({SWEEP_STATUSES})", name="ck_sweeps_status"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_sweeps_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sweeps"),
    )
    op.create_index("ix_sweeps_experiment_id", "sweeps", ["experiment_id"])
    op.create_table(
        "sweep_trials",
        sa.Column("sweep_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("objective", sa.Float(), nullable=True),
        sa.Column("intermediate", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"status IN ({TRIAL_STATUSES})", name="ck_sweep_trials_status"),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.id"], name="fk_sweep_trials_sweep_id_sweeps", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_sweep_trials_run_id_runs", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("sweep_id", "number", name="pk_sweep_trials"),
    )


def downgrade() -> None:
    op.drop_table("sweep_trials")
    op.drop_index("ix_sweeps_experiment_id", "sweeps")
    op.drop_table("sweeps")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("use_cache")
    with op.batch_alter_table("stages") as batch:
        batch.drop_index("ix_stages_reused_run_id")
        batch.drop_index("ix_stages_fingerprint")
        batch.drop_column("reused_stage_idx")
        batch.drop_column("reused_run_id")
        batch.drop_column("fingerprint")
