"""The queue's queries: items in order, a removed one kept but not listed, a running one
not removable, and the GPUs live runs on this machine hold (not a target's, not a dead
engine's)."""

from __future__ import annotations

import os
import socket

import pytest

from engine.store import Store, Workspace, queries
from engine.store.queue import (
    add_queue_item,
    busy_gpus,
    end_queue_item,
    get_queue_item,
    list_queue,
    remove_queue_item,
    start_queue_item,
)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.open(Workspace.open(tmp_path / "ws").db_path)


def new_run(store: Store, tmp_path, gpus: str, target: str | None = None) -> str:
    exp = queries.create_experiment(store, "e", "name: e\nstages: []\n", str(tmp_path))
    return queries.create_run(
        store, exp, plan_text="", plan_dir=str(tmp_path), gpus=gpus,
        runs_dir=tmp_path / "runs", target=target,
    )  # fmt: skip


def test_items_go_through_the_queue(store, tmp_path):
    a = add_queue_item(store, "/p/a.yaml", target=None, gpus="0")
    b = add_queue_item(store, "/p/b.yaml", target="box", gpus="")
    c = add_queue_item(store, "/p/c.yaml", target=None, gpus="cpu")
    assert [(i.position, i.status, i.gpus) for i in list_queue(store)] == [
        (1, "waiting", "0"),
        (2, "waiting", "cpu"),
        (3, "waiting", "cpu"),
    ]
    remove_queue_item(store, c.id)
    assert [i.id for i in list_queue(store)] == [a.id, b.id]
    assert [i.id for i in list_queue(store, statuses=("removed",))] == [c.id]
    with pytest.raises(queries.NotFound, match="no queue item"):
        get_queue_item(store, c.id)
    run = new_run(store, tmp_path, "0")
    assert start_queue_item(store, a.id, run)
    assert not start_queue_item(store, a.id, run)  # not waiting any more
    with pytest.raises(queries.StoreError, match=f"stop it with `stagelab stop {run}`"):
        remove_queue_item(store, a.id)
    end_queue_item(store, a.id, "failed", error="run x failed: ValueError: bad")
    item = get_queue_item(store, a.id)
    assert (item.status, item.error, item.run_id) == (
        "failed",
        "run x failed: ValueError: bad",
        run,
    )
    assert item.started_ms <= item.ended_ms
    with pytest.raises(ValueError):
        end_queue_item(store, b.id, "waiting")


def test_busy_gpus_are_those_of_live_runs_here(store, tmp_path):
    here, me = socket.gethostname(), os.getpid()
    live = new_run(store, tmp_path, "0,1")
    queries.claim_run(store, live, pid=me, host=here)
    remote = new_run(store, tmp_path, "2", target="box")
    queries.claim_run(store, remote, pid=me, host=here)
    dead = new_run(store, tmp_path, "3")
    queries.claim_run(store, dead, pid=2**22 + 7, host=here)  # no such process
    new_run(store, tmp_path, "4")  # queued: no engine holds it yet
    assert busy_gpus(store) == {"0", "1"}
    queries.set_run_status(store, live, "finished")
    assert busy_gpus(store) == set()
