"""Resume count on runs and total steps on stages (progress bars with ETA).

Revision ID: 0002_resume_and_progress
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_resume_and_progress"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("resume_count", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("stages") as batch:
        batch.add_column(sa.Column("total_steps", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stages") as batch:
        batch.drop_column("total_steps")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("resume_count")
