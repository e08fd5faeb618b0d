"""Run tags and notes (the runs table and its search, with an index to read one metric of
every run), and the queue of plans waiting to run one after another (issue 31).

Revision ID: 0008_tags_notes_queue
Revises: 0007_targets_and_placement
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_tags_notes_queue"
down_revision = "0007_targets_and_placement"
branch_labels = None
depends_on = None

QUEUE_STATUSES = "'waiting', 'running', 'done', 'failed', 'removed'"  # QueueStatus, in order


def upgrade() -> None:
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_tags_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "tag", name="pk_run_tags"),
    )
    op.create_index("ix_run_tags_tag", "run_tags", ["tag"])
    op.create_index("ix_latest_metrics_key_run_id", "latest_metrics", ["key", "run_id"])
    # A column only: SQLite adds it in place (see 0007).
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("plan_path", sa.Text(), nullable=False),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("gpus", sa.String(100), nullable=False, server_default="cpu"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=True),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"status IN ({QUEUE_STATUSES})", name="ck_queue_items_status"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_queue_items_run_id_runs", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_queue_items"),
    )
    op.create_index("ix_queue_items_status_position", "queue_items", ["status", "position"])


def downgrade() -> None:
    op.drop_index("ix_queue_items_status_position", table_name="queue_items")
    op.drop_table("queue_items")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("note")
    op.drop_index("ix_latest_metrics_key_run_id", table_name="latest_metrics")
    op.drop_index("ix_run_tags_tag", table_name="run_tags")
    op.drop_table("run_tags")
