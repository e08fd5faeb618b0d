"""Run tags, notes and the search language (issue 31, item 4): on a few runs made through
the queries, and on a workspace of 10,000 runs (tests/many_runs.py; the timing is in
bench/runs_table.py, not here)."""

from __future__ import annotations

import os
import socket

import pytest

from engine.store import Store, Workspace, queries
from engine.store.search import SearchError, parse, plan_settings, search_runs
from engine.store.tags import TagError, all_tags, set_run_note, set_run_tags, tag_run, untag_run
from tests import many_runs

PLAN = """name: p
stages:
  - name: sentiment
    kind: train
    batch_size: {batch}
    optimizer: {{name: adamw, lr: {lr}}}
"""


@pytest.fixture
def few(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    store = Store.open(workspace.db_path)
    runs = []
    for name, lr, batch in (("alpha", "1e-3", 16), ("beta", "3.0e-4", 32), ("gamma", "5e-5", 32)):
        plan = PLAN.format(lr=lr, batch=batch)
        exp = queries.create_experiment(store, name, plan, "/plans")
        runs.append(
            queries.create_run(
                store, exp, plan_text=plan, plan_dir="/p", gpus="cpu", runs_dir=workspace.runs_dir
            )
        )
    return store, runs


def test_tags_and_note_are_stored_and_read_back(few):
    store, (a, b, _) = few
    assert tag_run(store, a[:6], ["best", "baseline", "best"]) == ("baseline", "best")
    assert untag_run(store, a, ["best", "never-had"]) == ("baseline",)
    set_run_tags(store, b, ["x", "y"])
    set_run_note(store, b, "lr too high?")
    info = queries.get_run(store, b)
    assert (info.tags, info.note) == (("x", "y"), "lr too high?")
    assert {r.id: r.tags for r in queries.list_runs(store)}[a] == ("baseline",)
    assert all_tags(store) == ["baseline", "x", "y"]
    with pytest.raises(TagError, match="'two words' cannot be a tag"):
        tag_run(store, a, ["two words"])
    with pytest.raises(queries.NotFound):
        tag_run(store, "nonexistent", ["x"])


def test_search_fields_metrics_settings_and_words(few):
    store, (a, b, c) = few
    tag_run(store, a, ["baseline"])
    tag_run(store, c, ["baseline"])
    set_run_note(store, b, "Diverged at step 40")
    queries.set_run_status(store, a, "finished")
    queries.set_run_status(store, b, "failed")
    queries.add_metrics(store, a, [(0, "eval/accuracy", 10, 0.95, 1)])
    queries.add_metrics(store, b, [(0, "eval/accuracy", 10, 0.5, 1)])
    # c's earlier stage is good, its last stage is not: the final value is the last stage's
    queries.add_metrics(store, c, [(0, "eval/accuracy", 10, 0.99, 1)])
    queries.add_metrics(store, c, [(1, "eval/accuracy", 10, 0.6, 1)])

    def ids(text):
        return set(search_runs(store, text))

    assert ids("tag:baseline") == {a, c}
    assert ids("-tag:baseline") == {b}
    assert ids("status:finished") == {a}
    assert ids("status:queued") == {c}
    assert ids("eval/accuracy>0.9") == {a}
    assert ids("eval/accuracy<=0.6") == {b, c}
    assert ids("lr<1e-3") == {b, c}  # 3.0e-4 and 5e-5 (YAML reads 5e-5 as text)
    assert ids("lr>=1e-3") == {a}
    assert ids("stages.0.optimizer.lr=3e-4 batch_size=32") == {b}
    assert ids("stages.sentiment.optimizer.name=AdamW") == {a, b, c}
    assert ids("optimizer.lr<1e-4") == {c}
    assert ids("diverged") == {b}  # the note, any case
    assert ids("basel") == {a, c}  # a tag
    assert ids("gamma tag:baseline") == {c}  # the experiment's name
    assert ids(a[:8]) == {a}
    assert ids("experiment:bet") == {b}
    assert ids("target:local") == {a, b, c}
    assert ids("target:box") == set()
    assert ids("") == {a, b, c}
    assert ids("nosuchsetting<3") == set()


def test_live_looking_runs_whose_engine_is_gone_are_interrupted(few):
    store, (a, b, _) = few
    queries.claim_run(store, a, pid=os.getpid(), host=socket.gethostname())
    queries.claim_run(store, b, pid=2**22 + 12345, host=socket.gethostname())  # no such pid
    assert search_runs(store, "status:running") == [a]
    assert search_runs(store, "status:interrupted") == [b]
    assert b not in search_runs(store, "-status:interrupted")


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("colour:red", "'colour:red' names no field"),
        ("status:done", "'status:done' names no status"),
        ("lr<", "'lr<' compares with nothing"),
        ("eval/accuracy>high", "'eval/accuracy>high' compares a metric with 'high'"),
        ('tag:x "open', "unclosed quote"),
        ("<0.5", "'<0.5' is not a comparison"),
    ],
)
def test_a_bad_term_is_one_sentence_naming_it(text, sentence):
    with pytest.raises(SearchError) as caught:
        parse(text)
    assert sentence in str(caught.value) and "\n" not in str(caught.value)


def test_plan_settings_reach_list_items_by_index_and_name():
    settings = dict(plan_settings(PLAN.format(lr="1e-3", batch=8)))
    assert settings[("stages", "0", "batch_size")] == 8
    assert settings[("stages", "sentiment", "optimizer", "lr")] == "1e-3"
    assert plan_settings("stages: [unclosed") == ()


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    db = many_runs.build(tmp_path_factory.mktemp("many") / "ws", runs=10_000)
    return Store.open(db)


def test_search_on_ten_thousand_runs(many):
    def count(text):
        return len(search_runs(many, text))

    expected = [i for i in range(10_000) if i % 10 == 0 and i % 7 and i % 100 > 50]
    found = search_runs(many, "tag:baseline status:finished eval/accuracy>0.5")
    assert len(found) == len(expected) > 300
    assert found == [f"r{i:011d}" for i in reversed(expected)]  # newest first
    assert count("") == 10_000
    assert count("tag:sweep") == len(range(0, 10_000, 3))
    assert count("target:box") == 2_000
    # lr (1..10)e-4 by experiment: below 3e-4 are experiments with e % 10 in (0, 1)
    assert count("cls.optimizer.lr<3e-4") == 2_000
    assert count("batch_size=16 -status:failed") == len(
        [i for i in range(10_000) if (i // 10) % 2 == 0 and i % 7]
    )
    assert search_runs(many, "exp-999 note") == [f"r{i:011d}" for i in range(9999, 9989, -1)]


def test_table_rows_final_and_best_per_last_stage(few):
    from engine.store.run_rows import run_states, stage_names, table_runs

    store, (a, b, _) = few
    queries.upsert_stage(store, a, 0, name="mlm", kind="pretrain", status="finished")
    queries.upsert_stage(store, a, 1, name="cls", kind="train", status="finished")
    points = [(0, "eval/accuracy", 5, 0.99, 1), (0, "eval/loss", 5, 0.1, 1)]
    points += [
        (1, "eval/accuracy", s, v, 1)
        for s, v in ((5, 0.5), (10, float("nan")), (15, 0.7), (20, 0.6))
    ]
    points += [(1, "eval/loss", s, v, 1) for s, v in ((5, 0.9), (10, 0.4), (15, 0.8))]
    queries.add_metrics(store, a, points)
    tag_run(store, a, ["x"])
    rows = {
        r.id: r
        for r in table_runs(store, ["eval/accuracy", "eval/loss"], ["eval/accuracy", "eval/loss"])
    }
    assert rows[a].final == {"eval/accuracy": (0.6, 1), "eval/loss": (0.8, 1)}
    assert rows[a].best == {"eval/accuracy": (0.7, 1), "eval/loss": (0.4, 1)}
    assert stage_names(store, [a, b]) == {(a, 0): "mlm", (a, 1): "cls"}
    assert rows[a].tags == ("x",) and rows[b].final == {} and rows[b].best == {}
    assert [r.id for r in table_runs(store, run_ids=[b])] == [b]
    before = run_states(store)
    set_run_note(store, b, "changed")
    assert run_states(store)[b] != before[b] and run_states(store)[a] == before[a]
