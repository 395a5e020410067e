"""A work queue of keys with client-go's semantics, for a fixed pool of reconcile workers.

- A key waits in the queue at most once: ten events for one WebApp while it waits are one
  reconcile, which reads the latest state from the caches when it runs (level-triggered).
- A key is never processed by two workers at once.
- A key added while it is being processed is processed again when that finishes.

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
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._dirty: dict[K, float] = {}  # waiting to be processed → when first added
        self._processing: set[K] = set()

    def add(self, key: K) -> bool:
        """Queue ``key``; False when it is already waiting (the add is merged)."""
        if key in self._dirty:
            return False
        self._dirty[key] = time.monotonic()
        if key not in self._processing:
            self._queue.put_nowait(key)
        return True

    async def get(self) -> tuple[K, float]:
        """The next key, and how long it waited (seconds). Call :meth:`done` after."""
        key = await self._queue.get()
        added = self._dirty.pop(key)
        self._processing.add(key)
        return key, time.monotonic() - added

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:  # added again while it was processed
            self._queue.put_nowait(key)

    def __len__(self) -> int:
        """Keys waiting (the workqueue_depth metric)."""
        return len(self._dirty)
