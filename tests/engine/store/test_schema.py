"""The schema: migrations produce it, the ORM agrees with it, old databases upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from engine.store import Store, queries
from engine.store.migrate import current_revision, head_revision, upgrade_to_head
from engine.store.models import Base

SNAPSHOT = Path(__file__).with_name("schema_snapshot.sql")


def schema_sql(db: Path) -> str:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    con.close()
    return "\n".join(" ".join(r[0].split()) + ";" for r in rows) + "\n"


def insert_finished_run(conn, experiment_id: str, name: str, run_id: str) -> None:
    """An experiment with one finished run, written with plain SQL (any schema version)."""
    conn.execute(
        text(
            "INSERT INTO experiments (id, name, plan_text, plan_dir, notes, created_ms, updated_ms) "
            "VALUES (:e, :name, 'name: x', '/p', '', 1, 1)"
        ),
        {"e": experiment_id, "name": name},
    )
    conn.execute(
        text(
            "INSERT INTO runs (id, experiment_id, number, status, plan_text, plan_dir, gpus, run_dir, created_ms) "
            "VALUES (:r, :e, 1, 'finished', 'name: x', '/p', 'cpu', '/r', 1)"
        ),
        {"r": run_id, "e": experiment_id},
    )


def test_new_database_is_wal_at_head_and_matches_the_snapshot(tmp_path):
    store = Store.open(tmp_path / "s.db")
    assert current_revision(store.engine) == head_revision(store.engine) == "0008_tags_notes_queue"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    assert schema_sql(tmp_path / "s.db") == SNAPSHOT.read_text()


def test_orm_models_agree_with_the_migrated_schema(tmp_path):
    store = Store.open(tmp_path / "s.db")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_older_database_is_upgraded_on_open_and_keeps_its_data(tmp_path):
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    upgrade_to_head(engine, "0001_initial")
    with engine.begin() as conn:
        insert_finished_run(conn, "abcdef123456", "old one", "r00000000001")
    engine.dispose()
    assert "resume_count" not in schema_sql(db)
    store = Store.open(db)
    assert current_revision(store.engine) == "0008_tags_notes_queue"
    run = queries.get_run(store, "r00000000001")
    assert run.resume_count == 0 and run.status == "finished" and run.nproc == 1
    assert run.target is None and run.placement == {}
    assert queries.get_experiment(store, "old one").id == "abcdef123456"
    with store.engine.connect() as conn:  # 0008: an old run has an empty note, no tags
        assert conn.exec_driver_sql("SELECT note FROM runs").scalar() == ""
        assert conn.exec_driver_sql("SELECT count(*) FROM run_tags").scalar() == 0


def test_points_and_events_from_before_the_stream_seq_get_their_insertion_order(tmp_path):
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    upgrade_to_head(engine, "0002_resume_and_progress")
    with engine.begin() as conn:
        insert_finished_run(conn, "e1", "old", "r1")
        for step in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO metrics (run_id, stage_idx, key, step, value, wall_ms) "
                    f"VALUES ('r1', 0, 'train/loss', {step}, {1.0 / step}, {step})"
                )
            )
        conn.execute(
            text(
                "INSERT INTO events (run_id, stage_idx, wall_ms, level, kind, message) "
                "VALUES ('r1', 0, 9, 'info', 'stage', 'done')"
            )
        )
    engine.dispose()
    store = Store.open(db)
    items = queries.stream_after(store, "r1", 0, 10**9, 100)
    steps = [item[4] for item in items if item[0] == "point"]
    assert steps == [1, 2, 3]
    assert [item[3] for item in items if item[0] == "event"] == ["stage"]
    assert queries.max_seq(store, "r1") >= 3


def test_stages_of_an_older_database_have_no_fingerprint_and_runs_use_the_cache(tmp_path):
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    upgrade_to_head(engine, "0004_metric_chunks")
    with engine.begin() as conn:
        insert_finished_run(conn, "e1", "old", "r1")
        conn.execute(
            text(
                "INSERT INTO stages (run_id, idx, name, kind, status, steps_done) "
                "VALUES ('r1', 0, 's', 'train', 'finished', 3)"
            )
        )
    engine.dispose()
    store = Store.open(db)
    assert queries.get_run(store, "r1").use_cache is True
    (stage,) = queries.list_stages(store, "r1")
    assert stage.fingerprint is None and stage.reused_from is None
