"""Which waiting queue items start now: items on GPUs start when their GPUs are free of
every live run (and may pass a blocked one); an item on the CPU or a target runs alone and
in its turn."""

from __future__ import annotations

from dataclasses import dataclass

from engine.queue.decide import gpu_set, startable


@dataclass
class Item:
    name: str
    gpus: str = "cpu"
    target: str | None = None


def names(items) -> list[str]:
    return [i.name for i in items]


def test_gpu_sets():
    assert gpu_set("cpu") == frozenset() and gpu_set("") == frozenset()
    assert gpu_set("0, 1") == {"0", "1"}


def test_cpu_items_run_one_after_another():
    queue = [Item("a"), Item("b")]
    assert names(startable(queue, running=0, busy=())) == ["a"]
    assert names(startable(queue, running=1, busy=())) == []


def test_items_on_free_gpus_start_side_by_side():
    queue = [Item("a", "0"), Item("b", "1"), Item("c", "0,1"), Item("d", "2")]
    # c wants 0 and 1, taken by a and b: it waits, d passes it on the free GPU 2.
    assert names(startable(queue, running=0, busy=())) == ["a", "b", "d"]


def test_a_gpu_used_by_another_live_run_holds_its_item():
    queue = [Item("a", "0"), Item("b", "1")]
    assert names(startable(queue, running=0, busy={"0"})) == ["b"]
    assert names(startable(queue, running=0, busy={"0", "1"})) == []


def test_an_item_that_runs_alone_waits_its_turn_and_holds_those_after_it():
    queue = [Item("a", "0"), Item("cpu"), Item("b", "1")]
    assert names(startable(queue, running=0, busy=())) == ["a"]  # cpu waits for a to end
    assert names(startable([Item("cpu"), Item("b", "1")], running=1, busy=())) == []
    held = [Item("a", "0"), Item("t", target="box")]
    assert names(startable(held, running=0, busy={"0"})) == []  # a waits, t behind it
    assert names(startable([Item("t", "0", target="box")], running=0, busy={"0"})) == ["t"]
