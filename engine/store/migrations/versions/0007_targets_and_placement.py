"""Targets (where runs train: an SSH machine, a Slurm cluster) and where each run trained.

Revision ID: 0007_targets_and_placement
Revises: 0006_run_processes
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_targets_and_placement"
down_revision = "0006_run_processes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_targets"),
    )
    # Columns only: SQLite adds them in place (a new constraint would copy `runs`, and
    # dropping the old table cascades into every run's metrics).
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("target", sa.String(64), nullable=True))
        batch.add_column(sa.Column("placement", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("placement")
        batch.drop_column("target")
    op.drop_table("targets")
