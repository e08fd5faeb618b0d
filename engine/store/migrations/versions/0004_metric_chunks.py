"""Metric series in chunks (`metric_chunks`) instead of one row per point; NaN kept.

One row per point made opening a run with 3 million points take 6.5 s (row reads at
~1.4 µs each) and could not hold NaN (SQLite stores NaN as NULL, and `metrics.value` was
NOT NULL, so one NaN failed the whole write). Points move into chunks of up to 2048
consecutive points of a series, as packed little-endian arrays; `latest_metrics.value`
becomes nullable (NULL = NaN). The conversion is self-contained (no import of the current
models), so it stays correct however the models change later.

Revision ID: 0004_metric_chunks
Revises: 0003_stream_seq
"""

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0004_metric_chunks"
down_revision = "0003_stream_seq"
branch_labels = None
depends_on = None

CHUNK_POINTS = 2048


def _create_chunks() -> None:
    op.create_table(
        "metric_chunks",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("stage_idx", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("min_seq", sa.BigInteger(), nullable=False),
        sa.Column("max_seq", sa.BigInteger(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("vals", sa.LargeBinary(), nullable=False),
        sa.Column("seqs", sa.LargeBinary(), nullable=False),
        sa.Column("walls", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("n > 0 AND first_step <= last_step", name="ck_metric_chunks_extent"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_metric_chunks_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "stage_idx", "key", "first_step", name="pk_metric_chunks"
        ),
    )
    op.create_index("ix_metric_chunks_run_id_key", "metric_chunks", ["run_id", "key"])
    op.create_index("ix_metric_chunks_run_id_max_seq", "metric_chunks", ["run_id", "max_seq"])


def _flush(conn, table, slot, rows) -> None:
    steps = np.array([r[0] for r in rows], "<i8")
    vals = np.array([r[1] for r in rows], "<f8")
    walls = np.array([r[2] for r in rows], "<i8")
    seqs = np.array([r[3] or 0 for r in rows], "<i8")
    numbered = seqs[seqs > 0]
    conn.execute(
        table.insert(),
        {
            "run_id": slot[0],
            "stage_idx": slot[1],
            "key": slot[2],
            "first_step": int(steps[0]),
            "last_step": int(steps[-1]),
            "n": len(rows),
            "min_seq": int(numbered.min()) if len(numbered) else 0,
            "max_seq": int(numbered.max()) if len(numbered) else 0,
            "steps": steps.tobytes(),
            "vals": vals.tobytes(),
            "seqs": seqs.tobytes(),
            "walls": walls.tobytes(),
        },
    )


def upgrade() -> None:
    _create_chunks()
    conn = op.get_bind()
    table = sa.table(
        "metric_chunks",
        *(
            sa.column(c)
            for c in (
                "run_id",
                "stage_idx",
                "key",
                "first_step",
                "last_step",
                "n",
                "min_seq",
                "max_seq",
                "steps",
                "vals",
                "seqs",
                "walls",
            )
        ),
    )
    # The primary key's order: each series comes out whole and sorted by step.
    result = conn.exec_driver_sql(
        "SELECT run_id, stage_idx, key, step, value, wall_ms, seq FROM metrics "
        "ORDER BY run_id, stage_idx, key, step"
    )
    slot, rows = None, []
    for run_id, stage, key, step, value, wall, seq in result:
        here = (run_id, stage, key)
        if rows and (here != slot or len(rows) == CHUNK_POINTS):
            _flush(conn, table, slot, rows)
            rows = []
        slot = here
        rows.append((step, value, wall, seq))
    if rows:
        _flush(conn, table, slot, rows)
    op.drop_table("metrics")
    with op.batch_alter_table("latest_metrics") as batch:
        batch.alter_column("value", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("stage_idx", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("wall_ms", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_metrics_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "stage_idx", "key", "step", name="pk_metrics"),
    )
    op.create_index("ix_metrics_run_id_key", "metrics", ["run_id", "key"])
    op.create_index("ix_metrics_run_id_seq", "metrics", ["run_id", "seq"])
    conn = op.get_bind()
    metrics = sa.table(
        "metrics",
        *(sa.column(c) for c in ("run_id", "stage_idx", "key", "step", "value", "wall_ms", "seq")),
    )
    # The old table cannot hold NaN: those points are left out (docs/engine.md, "The record").
    for run_id, stage, key, steps, vals, seqs, walls in conn.exec_driver_sql(
        "SELECT run_id, stage_idx, key, steps, vals, seqs, walls FROM metric_chunks"
    ).all():
        rows = [
            {
                "run_id": run_id,
                "stage_idx": stage,
                "key": key,
                "step": int(st),
                "value": float(v),
                "wall_ms": int(w),
                "seq": int(q) or None,
            }
            for st, v, q, w in zip(
                np.frombuffer(steps, "<i8"),
                np.frombuffer(vals, "<f8"),
                np.frombuffer(seqs, "<i8"),
                np.frombuffer(walls, "<i8"),
                strict=True,
            )
            if not np.isnan(v)
        ]
        if rows:
            conn.execute(metrics.insert(), rows)
    op.drop_table("metric_chunks")
    conn.exec_driver_sql("DELETE FROM latest_metrics WHERE value IS NULL")
    with op.batch_alter_table("latest_metrics") as batch:
        batch.alter_column("value", existing_type=sa.Float(), nullable=False)
