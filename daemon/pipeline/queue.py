"""The bounded queue between the ingest and the Redis writers.

The ingest puts entries with a plain method call (no task, no future per event) and
never waits: a full queue refuses the entry, and the caller counts it as dropped. Each
id is routed to one shard, and each shard has one writer, so an id's entries reach
Redis in ingest order however many writers there are.

The queue is bounded in entries and in bytes (the encoded entries'), whichever bound is
reached first. An entry a writer has taken still counts until the writer is `done` with
its batch (written or dropped): batches on their way to Redis live in memory too, and
`received = cached + rate_limited + dropped + depth` then holds at every moment.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NamedTuple

from daemon.core.model import Namespace

DEFAULT_CAPACITY_BYTES = 64 * 1024 * 1024


class QueuedEntry(NamedTuple):
    """One entry waiting for Redis: which id, which of its lists, and the stored bytes."""

    namespace: Namespace
    id: str
    target: int  # Target bits, as a plain int (IntFlag operators are slow on the hot path)
    data: bytes
    event_id: str = ""  # the event's own id (sidecar.journey.event_id_from), "" if none
    error: str = ""  # its error message (for its signature, daemon.core.signature), or ""


class EventQueue:
    """A bounded queue split into shards, one per writer; an id always maps to one shard."""

    def __init__(
        self, capacity: int, shards: int, capacity_bytes: int = DEFAULT_CAPACITY_BYTES
    ) -> None:
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self.depth = 0  # entries queued or in a writer's batch
        self.bytes = 0  # and their encoded bytes
        self._shards: list[deque[QueuedEntry]] = [deque() for _ in range(shards)]
        self._ready = [asyncio.Event() for _ in range(shards)]

    def put(self, entry: QueuedEntry) -> bool:
        """Queue an entry; False (and nothing queued) when either bound is reached."""
        size = len(entry.data)
        if self.depth >= self.capacity or self.bytes + size > self.capacity_bytes:
            return False
        shard = hash(entry.id) % len(self._shards)
        self._shards[shard].append(entry)
        self.depth += 1
        self.bytes += size
        self._ready[shard].set()
        return True

    def take(self, shard: int, max_items: int, max_bytes: int) -> tuple[list[QueuedEntry], int]:
        """A shard's oldest entries, at most `max_items` and, past the first, at most
        `max_bytes` in all; with their bytes. They count until `done`."""
        items = self._shards[shard]
        batch: list[QueuedEntry] = []
        size = 0
        while items and len(batch) < max_items:
            n = len(items[0].data)
            if batch and size + n > max_bytes:
                break
            batch.append(items.popleft())
            size += n
        if not items:
            self._ready[shard].clear()
        return batch, size

    def done(self, count: int, size: int) -> None:
        """A writer is done with entries it took (written, or counted as dropped)."""
        self.depth -= count
        self.bytes -= size

    def pending(self, shard: int) -> int:
        """How many entries a shard holds, not counting those its writer has taken."""
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
