"""Chunked metric series against a plain model of what was written: every point once, in
order, NaN and ±inf kept, replacements and truncations, catch-up by stream position."""

from __future__ import annotations

import math
import sqlite3

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from engine.store import Store, queries, series
from engine.store.migrate import alembic_config, upgrade_to_head
from tests.engine.store.test_schema import insert_finished_run


def new_run(store: Store) -> str:
    exp = queries.create_experiment(store, "e", "name: e\nstages: []\n", "/p")
    run = queries.create_run(store, exp, plan_text="", plan_dir="/p", gpus="cpu", runs_dir="/r")
    for idx in range(3):
        queries.upsert_stage(store, run, idx, name=f"s{idx}", kind="train", status="running")
    return run


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_nan_and_infinities_are_stored_read_exported_and_latest(tmp_path):
    store = Store.open(tmp_path / "s.db")
    run = new_run(store)
    values = [1.0, math.nan, math.inf, -math.inf, 0.5]
    queries.add_metrics(
        store, run, [(0, "train/loss", i + 1, v, i, i + 1) for i, v in enumerate(values)]
    )
    steps, got = queries.read_series(store, run, "train/loss")
    assert steps == [1, 2, 3, 4, 5]
    assert all(same(a, b) for a, b in zip(got, values, strict=True))
    queries.add_metrics(store, run, [(0, "eval/loss", 5, math.nan, 9, 6)])
    latest = {m.key: m.value for m in queries.latest_metrics(store, run)}
    assert math.isnan(latest["eval/loss"]) and latest["train/loss"] == 0.5
    items = queries.stream_after(store, run, 0, 100, 100)
    assert [i[1] for i in items] == [1, 2, 3, 4, 5, 6]
    assert math.isnan(items[1][5]) and items[2][5] == math.inf and items[3][5] == -math.inf
    rows = queries.export_metrics_rows(store, run)
    assert [r[2] for r in rows] == ["eval/loss"] + ["train/loss"] * 5


def test_a_series_longer_than_a_chunk_reads_back_whole_and_in_few_rows(tmp_path):
    store = Store.open(tmp_path / "s.db")
    run = new_run(store)
    n = series.CHUNK_POINTS * 3 + 17
    # Written as the recorder does: a few points per flush.
    for lo in range(1, n + 1, 50):
        queries.add_metrics(
            store,
            run,
            [(0, "train/loss", s, s * 0.5, s, s) for s in range(lo, min(lo + 50, n + 1))],
        )
    steps, values = queries.read_series(store, run, "train/loss")
    assert steps == list(range(1, n + 1)) and values == [s * 0.5 for s in steps]
    con = sqlite3.connect(tmp_path / "s.db")
    assert con.execute("SELECT count(*), sum(n) FROM metric_chunks").fetchone() == (4, n)


@st.composite
def histories(draw):
    """Batches of points (some steps repeated, as a resumed run rewrites) and truncations."""
    ops, seq = [], 0
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 5)) == 0:
            ops.append(("truncate", draw(st.integers(0, 2)), draw(st.integers(0, 60))))
            continue
        batch = []
        for _ in range(draw(st.integers(1, 40))):
            seq += 1
            value = draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64)))
            batch.append(
                (
                    draw(st.integers(0, 2)),
                    draw(st.sampled_from(["a", "b"])),
                    draw(st.integers(1, 60)),
                    value,
                    seq,
                    seq,
                )
            )
        ops.append(("add", batch))
    return ops


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=histories(), limit=st.integers(1, 50), chunk=st.sampled_from([1, 3, 7, 2048]))
def test_chunks_agree_with_a_plain_model(shared_store, ops, limit, chunk, monkeypatch_module):
    monkeypatch_module.setattr(series, "CHUNK_POINTS", chunk)
    # A run of its own in one database: a new database per example was 0.1 s of its schema.
    store = shared_store
    run = new_run(store)
    model: dict[tuple[int, str, int], tuple[float, int]] = {}
    for op in ops:
        if op[0] == "add":
            queries.add_metrics(store, run, op[1])
            for stage, key, step, value, _wall, seq in op[1]:
                model[(stage, key, step)] = (value, seq)
        else:
            _, stage, step = op
            queries.truncate_metrics_after(store, run, stage, step)
            model = {
                k: v for k, v in model.items() if k[0] < stage or (k[0] == stage and k[2] <= step)
            }
    for key in ("a", "b"):
        want = sorted((k[0], k[2], v[0]) for k, v in model.items() if k[1] == key)
        steps, values = queries.read_series(store, run, key)
        assert steps == [w[1] for w in want]
        assert all(same(a, w[2]) for a, w in zip(values, want, strict=True))
    by_seq = sorted((v[1], k, v[0]) for k, v in model.items())
    for after in (0, len(by_seq) // 2, by_seq[-1][0] if by_seq else 0):
        got = queries.stream_after(store, run, after, 10**9, limit)
        want = [w for w in by_seq if w[0] > after][:limit]
        assert [g[1] for g in got] == [w[0] for w in want]
        assert all(same(g[5], w[2]) and g[4] == w[1][2] for g, w in zip(got, want, strict=True))
    latest = {(m.stage_idx, m.key): (m.step, m.value) for m in queries.latest_metrics(store, run)}
    last: dict[tuple[int, str], tuple[int, float]] = {}
    for (stage, key, step), (value, _) in sorted(model.items()):
        last[(stage, key)] = (step, value)
    assert latest.keys() == last.keys()
    assert all(latest[k][0] == last[k][0] and same(latest[k][1], last[k][1]) for k in last)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("s") / "s.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_a_workspace_of_rows_migrates_to_chunks_and_back(tmp_path):
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")
    upgrade_to_head(engine, "0003_stream_seq")
    n = 5000
    with engine.begin() as conn:
        insert_finished_run(conn, "e1", "old", "r1")
        conn.execute(
            text(
                "INSERT INTO metrics (run_id, stage_idx, key, step, value, wall_ms, seq) "
                "VALUES ('r1', :stage, :key, :step, :value, :step, :seq)"
            ),
            [
                {"stage": stage, "key": key, "step": s, "value": s / 7, "seq": 2 * s + (key == "b")}
                for stage in (0, 1)
                for key in ("a", "b")
                for s in range(1, n + 1)
            ],
        )
    engine.dispose()
    store = Store.open(db)
    for stage in (0, 1):
        steps, values = queries.read_series(store, "r1", "b", stage_idx=stage)
        assert steps == list(range(1, n + 1)) and values == [s / 7 for s in steps]
    assert queries.max_seq(store, "r1") == 2 * n + 1
    assert [i[1] for i in queries.stream_after(store, "r1", 10, 10**9, 4)] == [11, 11, 12, 12]
    store.close()
    engine = create_engine(f"sqlite:///{db}")
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003_stream_seq")
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM metrics").fetchone() == (4 * n,)
