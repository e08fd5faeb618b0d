"""The recorder refuses a stage field the row does not have and says when a live listener
fails; the owner finds another process's error file as soon as it is there (issue 28)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from engine.process.ending import RANK_ERROR_WAIT_S, failed_rank
from engine.runtime.recorder import Recorder
from engine.store import Store, Workspace, queries


@pytest.fixture
def run(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    store = Store.open(ws.db_path)
    exp = queries.create_experiment(store, "e", "name: e\nstages: []\n", str(tmp_path))
    run_id = queries.create_run(
        store, exp, plan_text="", plan_dir=str(tmp_path), gpus="cpu", runs_dir=ws.runs_dir
    )
    queries.upsert_stage(store, run_id, 0, name="s", kind="train", status="running")
    yield store, run_id
    store.close()


def test_a_misspelt_stage_field_is_an_error_when_recorded(run):
    store, run_id = run
    recorder = Recorder(store, run_id)
    heard: list = []
    recorder.listeners.append(lambda kind, payload: heard.append(kind))
    with pytest.raises(TypeError, match="'stpes_done'"):
        recorder.stage(0, stpes_done=3)
    with pytest.raises(ValueError, match="finshed"):
        recorder.stage(0, status="finshed")
    assert heard == [] and recorder.pending == 0  # nothing queued, nothing sent live
    recorder.stage(0, steps_done=3)
    assert recorder.flush()
    assert queries.list_stages(store, run_id)[0].steps_done == 3


def test_a_failing_live_listener_is_reported_once_and_the_others_still_hear(run, capsys):
    store, run_id = run
    recorder = Recorder(store, run_id)
    heard: list[str] = []

    def broken(kind, payload):
        raise RuntimeError("socket gone")

    recorder.listeners += [broken, lambda kind, payload: heard.append(kind)]
    recorder.metrics(0, 1, {"train/loss": 0.5})
    recorder.metrics(0, 2, {"train/loss": 0.4})
    assert recorder.flush()
    warnings = [e for e in queries.list_events(store, run_id) if e.kind == "channel"]
    assert len(warnings) == 1  # said once, not at every step
    assert warnings[0].level == "warning"
    assert "broken" in warnings[0].message and "RuntimeError: socket gone" in warnings[0].message
    assert heard == ["metrics", "event", "metrics"]  # the warning reached the others live
    assert "live listener" in capsys.readouterr().err
    _, points = queries.read_series(store, run_id, "train/loss")
    assert points == [0.5, 0.4]  # the record is complete


def test_another_process_error_file_is_read_as_soon_as_it_exists(tmp_path: Path):
    (tmp_path / "rank1.error").write_text("ValueError: bad row")
    start = time.monotonic()
    assert failed_rank(tmp_path) == "process rank1: ValueError: bad row"
    assert time.monotonic() - start < 0.2  # was a fixed 0.5 s sleep


def test_an_error_file_written_while_waiting_is_found_and_none_after_the_wait(tmp_path: Path):
    late = threading.Timer(0.1, (tmp_path / "rank2.error").write_text, ["OSError: disk"])
    late.start()
    start = time.monotonic()
    assert failed_rank(tmp_path) == "process rank2: OSError: disk"
    assert time.monotonic() - start < RANK_ERROR_WAIT_S
    late.join()
    (tmp_path / "rank2.error").unlink()
    start = time.monotonic()
    assert failed_rank(tmp_path) is None
    assert RANK_ERROR_WAIT_S <= time.monotonic() - start < RANK_ERROR_WAIT_S + 0.3


class ScriptedOwner:
    """A `Dist` whose broadcasts hand a non-owning process the owner's words in turn."""

    rank = 1

    def __init__(self, words):
        self.words = list(words)

    def broadcast(self, obj):
        return self.words.pop(0)

    def barrier(self):
        pass

    def leave(self):
        self.left = True


def test_a_non_owning_process_follows_typed_words_from_the_owner(tmp_path, monkeypatch):
    from engine.process import worker
    from engine.resources import demo_plan_path

    monkeypatch.setattr(worker, "follow_owner_signals", lambda: None)
    run = worker.RunWords(
        plan_text=demo_plan_path().read_text(),
        plan_dir=str(tmp_path),
        run_id="r",
        run_dir=str(tmp_path),
        cache_dir=str(tmp_path / "cache"),
    )
    owner = ScriptedOwner([run, worker.End()])
    assert worker.follow(owner) == 0
    assert owner.left  # its process groups go before the interpreter's end (Dist.leave)
    assert (tmp_path / "rank1.pid").exists()
    # A word it does not know is its error, written for the owner to report.
    assert worker.follow(ScriptedOwner([run, ("end",)])) == 1
    assert "unknown word from the owner" in (tmp_path / "rank1.error").read_text()
