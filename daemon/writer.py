"""The bounded queue in front of Redis and the writers that drain it in batches.

The ingest puts entries with a plain method call (no task, no future per event) and
never waits: a full queue drops and counts. Each id is routed to one writer shard, so
its entries reach Redis in ingest order however many writers there are. A writer
takes what has queued up, groups it per list, and writes each list's entries with one
multi-value LPUSH, all lists of a batch in one pipeline.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import NamedTuple

import structlog
from redis.exceptions import RedisError

from daemon.entry import Collection, DropReason, Namespace, Target
from daemon.metrics import Metrics
from daemon.storage import Storage, events_key

MAX_BATCH = 2000  # entries per pipeline: large enough to amortise, small enough to bound latency
LINGER_S = 0.002  # a writer woken for fewer than LINGER_BELOW entries waits this long for more
LINGER_BELOW = 100
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 1.0
ERROR_LOG_INTERVAL_S = 10.0

_ALL, _ERROR = int(Target.ALL), int(Target.ERROR)

log = structlog.get_logger(__name__)


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


class RedisHealth:
    """Whether Redis answered last time, mirrored in `events_cache_redis_up`."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.up = False
        self.last_error = ""
        self._last_logged = float("-inf")

    def ok(self) -> None:
        """Record a successful operation."""
        if not self.up:
            self.up = True
            self._metrics.redis_up.set(1)
            if self.last_error:
                log.info("redis available again")
            self.last_error = ""

    def failed(self, error: BaseException, what: str) -> None:
        """Record a failure; log at most once per interval, never per event."""
        self.up = False
        self._metrics.redis_up.set(0)
        self.last_error = f"{type(error).__name__}: {error}"
        now = time.monotonic()
        if now - self._last_logged >= ERROR_LOG_INTERVAL_S:
            self._last_logged = now
            log.warning("redis unavailable", operation=what, error=self.last_error)


class Writers:
    """`pool.size` writer loops draining the queue into Redis."""

    def __init__(
        self,
        queue: EventQueue,
        storage: Storage,
        metrics: Metrics,
        health: RedisHealth,
        on_written: Callable[[set[str]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._storage = storage
        self._metrics = metrics
        self._health = health
        self._on_written = on_written
        self._clock = clock
        self._stopping = False

    async def run(self, shard: int) -> None:
        """Write the shard's entries until stopped and the shard is empty."""
        backoff = BACKOFF_START_S
        while True:
            if not self._stopping:
                await self._queue.wait(shard)
                if self._queue.pending(shard) < LINGER_BELOW:
                    # A round trip costs far more than an entry: let a few more arrive.
                    await asyncio.sleep(LINGER_S)
            batch = self._queue.take(shard, MAX_BATCH)
            if not batch:
                if self._stopping:
                    return
                continue
            if await self.write(batch):
                backoff = BACKOFF_START_S
                continue
            # Redis failed: keep what is queued and wait for it to answer again.
            while not self._stopping:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                try:
                    await self._storage.ping()
                except (RedisError, OSError) as e:
                    self._health.failed(e, "ping")
                    continue
                self._health.ok()
                break

    async def write(self, batch: list[QueuedEntry]) -> bool:
        """Write one batch; on failure count it as dropped. True when written."""
        # Group per id first: one key string per list, not one per entry.
        per_id: dict[tuple[Namespace, str], tuple[list[bytes], list[bytes]]] = {}
        for namespace, id_, target, data in batch:
            values = per_id.get((namespace, id_))
            if values is None:
                values = per_id[namespace, id_] = ([], [])
            if target & _ALL:
                values[0].append(data)
            if target & _ERROR:
                values[1].append(data)
        lists: dict[str, list[bytes]] = {}
        ids: dict[str, list[str]] = {}
        for (namespace, id_), (all_values, error_values) in per_id.items():
            if all_values:
                lists[events_key(namespace, id_)] = all_values
            if error_values:
                lists[events_key(namespace, id_, Collection.ERROR)] = error_values
            ids.setdefault(namespace, []).append(id_)
        started = time.perf_counter()
        try:
            await self._storage.write(lists, ids, self._clock())
        except (RedisError, OSError) as e:
            self._health.failed(e, "write")
            self._metrics.dropped[DropReason.REDIS_ERROR].inc(len(batch))
            return False
        except asyncio.CancelledError:
            self._metrics.dropped[DropReason.SHUTDOWN].inc(len(batch))
            raise
        self._metrics.redis_write_seconds.observe(time.perf_counter() - started)
        self._health.ok()
        self._count_cached(batch, per_id)
        self._on_written(set(lists))
        return True

    def _count_cached(
        self,
        batch: list[QueuedEntry],
        per_id: dict[tuple[Namespace, str], tuple[list[bytes], list[bytes]]],
    ) -> None:
        entries = Counter(entry[0] for entry in batch)
        cached_all: dict[Namespace, int] = {}
        cached_error: dict[Namespace, int] = {}
        for (namespace, _), (all_values, error_values) in per_id.items():
            cached_all[namespace] = cached_all.get(namespace, 0) + len(all_values)
            cached_error[namespace] = cached_error.get(namespace, 0) + len(error_values)
        m = self._metrics
        for namespace, total in entries.items():
            n_all, n_error = cached_all[namespace], cached_error[namespace]
            if n_all:
                m.cached[namespace, Collection.ALL].inc(n_all)
            if total > n_all:
                # Queued for the error list only: its all-events list was rate limited.
                m.rate_limited[namespace, Collection.ALL].inc(total - n_all)
            if n_error:
                m.cached[namespace, Collection.ERROR].inc(n_error)

    def stop(self) -> None:
        """Write what is queued, then return from `run`."""
        self._stopping = True
        self._queue.wake_all()
