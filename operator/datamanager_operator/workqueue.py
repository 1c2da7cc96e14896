"""A deduplicating work queue with delayed re-adds (controller-runtime's workqueue, in asyncio).

A key is never processed by two workers at once; a key added while it is processed is processed again
right after; a delayed add keeps only the earliest pending time per key.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

K = TypeVar("K")


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def scheduled(self) -> int:
        """Keys with a delayed add pending."""
        return len(self._timers)

    def add(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + max(delay, 0.0)
        current = self._timers.get(key)
        if current is not None:
            if current.when() <= when:
                return
            current.cancel()
        self._timers[key] = loop.call_at(when, self.add, key)  # add() drops the timer it fires from

    def forget(self, key: K) -> None:
        """Drops a pending delayed add of ``key`` (its object is gone)."""
        timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()

    async def get(self) -> K:
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)
