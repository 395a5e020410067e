"""A work queue of keys with client-go's semantics, for a fixed pool of reconcile workers.

- A key waits in the queue at most once: ten events for one WebApp while it waits are one
  reconcile, which reads the latest state from the caches when it runs (level-triggered).
- A key is never processed by two workers at once.
- A key added while it is being processed is processed again when that finishes.
- What changed goes first: a key that only a list (the start-up relist, a resync) reported
  waits behind every key that an event reported, as controller-runtime's priority queue puts
  the initial list behind fresh events. After a restart behind a backlog, a new WebApp is not
  made to wait for the thousand that were merely listed.

Event handlers only add keys and return, so no event body is held while reconciles wait:
memory stays flat however large the burst of events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        # Two lanes, each an ordered set (a dict's keys): what changed now, and what a list
        # or a resync merely reports. A worker takes from the first lane while it has keys.
        self._fresh: dict[K, None] = {}
        self._listed: dict[K, None] = {}
        self._available = asyncio.Semaphore(0)  # one count per key in a lane
        self._dirty: dict[K, tuple[float, bool]] = {}  # waiting → (first added, listed only)
        self._processing: set[K] = set()

    def add(self, key: K, *, listed: bool = False) -> bool:
        """Queue ``key``; False when it is already waiting (the add is merged). ``listed``: the
        key comes from a list or a resync, not from a change, and waits behind every key that
        does. A change to a key waiting as listed moves it to the front lane."""
        if key in self._dirty:
            added, was_listed = self._dirty[key]
            if was_listed and not listed:
                self._dirty[key] = (added, False)
                if key in self._listed:  # waiting in its lane, not being processed
                    del self._listed[key]
                    self._fresh[key] = None
            return False
        self._dirty[key] = (time.monotonic(), listed)
        if key not in self._processing:
            self._put(key, listed)
        return True

    def _put(self, key: K, listed: bool) -> None:
        (self._listed if listed else self._fresh)[key] = None
        self._available.release()

    async def get(self) -> tuple[K, float]:
        """The next key, and how long it waited (seconds). Call :meth:`done` after."""
        await self._available.acquire()
        lane = self._fresh if self._fresh else self._listed
        key = next(iter(lane))
        del lane[key]
        added, _ = self._dirty.pop(key)
        self._processing.add(key)
        return key, time.monotonic() - added

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:  # added again while it was processed
            self._put(key, self._dirty[key][1])

    def __len__(self) -> int:
        """Keys waiting (the workqueue_depth metric)."""
        return len(self._dirty)
