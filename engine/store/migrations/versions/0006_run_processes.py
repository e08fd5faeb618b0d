"""Processes per node of a run (torchrun's --nproc-per-node), so a resume starts as many.

Revision ID: 0006_run_processes
Revises: 0005_stage_cache_and_sweeps
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_run_processes"
down_revision = "0005_stage_cache_and_sweeps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A column only: SQLite adds it in place. A new constraint would make batch mode copy
    # the table, and dropping the old `runs` cascades into every run's metrics.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("nproc", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("nproc")
