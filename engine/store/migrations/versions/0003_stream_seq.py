"""Stream position (`seq`) on metric points and events, for the live channel's catch-up.

Revision ID: 0003_stream_seq
Revises: 0002_resume_and_progress
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_stream_seq"
down_revision = "0002_resume_and_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.create_index("ix_metrics_run_id_seq", ["run_id", "seq"])
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.create_index("ix_events_run_id_seq", ["run_id", "seq"])
    # Rows written before this version keep their insertion order as stream position.
    op.execute("UPDATE metrics SET seq = rowid")
    op.execute("UPDATE events SET seq = id")


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_run_id_seq")
        batch.drop_column("seq")
    with op.batch_alter_table("metrics") as batch:
        batch.drop_index("ix_metrics_run_id_seq")
        batch.drop_column("seq")
