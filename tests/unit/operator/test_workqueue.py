"""The reconcile queue: a key is never handed to two workers at once, is never lost when it changes while
it is processed, and a delayed add keeps only the earliest time. Delays are asserted by the order in which
keys come out (timers fire in the order of their times), never by how long they took, so a loaded machine
cannot make these tests fail or pass by chance."""

from __future__ import annotations

import asyncio

from datamanager_operator.workqueue import WorkQueue

PATIENCE = 10.0  # seconds: generous, only a bug makes a get wait this long


async def next_key(queue: WorkQueue[str]) -> str:
    return await asyncio.wait_for(queue.get(), PATIENCE)


async def test_a_key_added_many_times_is_processed_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert len(queue) == 2
    assert [await next_key(queue), await next_key(queue)] == ["a", "b"]
    assert len(queue) == 0


async def test_a_key_added_while_it_is_processed_waits_and_comes_again_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await next_key(queue) == "a"
    queue.add("a")  # a change while a worker reconciles it
    queue.add("a")
    assert len(queue) == 0, "not handed to a second worker while the first holds it"
    queue.done("a")
    assert len(queue) == 1
    assert await next_key(queue) == "a"
    queue.done("a")
    assert len(queue) == 0, "processed again once, not once per add"


async def test_done_without_a_change_does_not_requeue() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await next_key(queue) == "a"
    queue.done("a")
    assert len(queue) == 0
    queue.add("a")
    assert await next_key(queue) == "a", "a finished key can be added again"


async def test_delayed_adds_come_out_in_the_order_of_their_times() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("late", 0.06)
    queue.add_after("early", 0.04)
    queue.add_after("overdue", -5)  # a time already passed: at once
    assert len(queue) == 0, "a delayed add is not queued before its time"
    assert [await next_key(queue) for _ in range(3)] == ["overdue", "early", "late"]


async def test_a_delayed_add_keeps_only_the_earliest_time_per_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.02)
    queue.add_after("a", 0.05)  # later: ignored
    queue.add_after("b", 0.07)
    queue.add_after("b", 0.04)  # earlier: replaces the pending one
    queue.add_after("marker", 0.1)
    for key in ("a", "b", "marker"):
        assert await next_key(queue) == key, "a dropped time would bring a or b again before the marker"
        queue.done(key)
    assert len(queue) == 0


async def test_a_key_can_be_delayed_again_after_its_time_came() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(3):
        queue.add_after("a", 0.02)
        assert await next_key(queue) == "a"
        queue.done("a")


async def test_an_add_now_replaces_a_pending_delayed_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.04)
    queue.add("a")
    queue.add_after("marker", 0.06)
    assert await next_key(queue) == "a"
    queue.done("a")
    assert await next_key(queue) == "marker"
    assert len(queue) == 0, "the delayed add of a, due before the marker, was cancelled by the add"


async def test_a_due_key_that_is_being_processed_comes_again_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await next_key(queue) == "a"
    queue.add_after("a", 0.02)
    queue.add_after("marker", 0.06)
    assert await next_key(queue) == "marker", "a stays with its worker when its time comes"
    queue.done("a")
    assert await next_key(queue) == "a"


async def test_forget_drops_a_pending_delayed_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("gone", 0.02)
    queue.add_after("kept", 0.06)
    queue.forget("gone")
    queue.forget("never-added")
    assert await next_key(queue) == "kept"
    assert len(queue) == 0, "gone was due before kept"
