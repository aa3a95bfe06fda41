"""The bounded queue between the ingest and the Redis writers.

The ingest puts entries with a plain method call (no task, no future per event) and
never waits: a full queue refuses the entry, and the caller counts it as dropped. Each
id is routed to one shard, and each shard has one writer, so an id's entries reach
Redis in ingest order however many writers there are.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NamedTuple

from daemon.core.model import Namespace


class QueuedEntry(NamedTuple):
    """One entry waiting for Redis: which id, which of its lists, and the stored bytes."""

    namespace: Namespace
    id: str
    target: int  # Target bits, as a plain int (IntFlag operators are slow on the hot path)
    data: bytes


class EventQueue:
    """A bounded queue split into shards, one per writer; an id always maps to one shard."""

    def __init__(self, capacity: int, shards: int) -> None:
        self.capacity = capacity
        self.depth = 0
        self._shards: list[deque[QueuedEntry]] = [deque() for _ in range(shards)]
        self._ready = [asyncio.Event() for _ in range(shards)]

    def put(self, entry: QueuedEntry) -> bool:
        """Queue an entry; False (and nothing queued) when the queue is full."""
        if self.depth >= self.capacity:
            return False
        shard = hash(entry.id) % len(self._shards)
        self._shards[shard].append(entry)
        self.depth += 1
        self._ready[shard].set()
        return True

    def take(self, shard: int, max_items: int) -> list[QueuedEntry]:
        """Up to `max_items` of a shard's entries, oldest first."""
        items = self._shards[shard]
        count = min(len(items), max_items)
        batch = [items.popleft() for _ in range(count)]
        self.depth -= count
        if not items:
            self._ready[shard].clear()
        return batch

    def pending(self, shard: int) -> int:
        """How many entries a shard holds."""
        return len(self._shards[shard])

    async def wait(self, shard: int) -> None:
        """Return once the shard has entries."""
        await self._ready[shard].wait()

    def wake_all(self) -> None:
        """Let every writer look at its shard again (used when stopping)."""
        for ready in self._ready:
            ready.set()

    @property
    def shards(self) -> int:
        """How many writer shards there are."""
        return len(self._shards)
