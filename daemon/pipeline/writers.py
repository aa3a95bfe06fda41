"""The writers: `pool.size` loops draining the queue into Redis in batches.

A writer takes what has queued up in its shard, groups it per list, and writes each
list's entries with one multi-value LPUSH, all lists of a batch in one pipeline. When
Redis fails, the batch is counted as dropped and the writer pings with backoff until
Redis answers; meanwhile the queue fills and then refuses (counted by the ingest).

A batch is bounded in entries and in bytes: a pipeline is built (and copied by the
client) whole, so its bytes, times `pool.size`, are memory on top of the queue's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from daemon.core.activity import ActivityCounter
from daemon.core.model import Collection, DropReason, Namespace, RedisOperation, Target
from daemon.metrics import Metrics
from daemon.pipeline.errors import ErrorTally
from daemon.pipeline.queue import EventQueue, QueuedEntry
from daemon.pipeline.tailswitch import TailSwitch, tail_message
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth
from daemon.store.journey import journey_member
from daemon.store.keys import events_key
from daemon.store.storage import Storage

MAX_BATCH = 2000  # entries per pipeline: large enough to amortise, small enough to bound latency
# Bytes per pipeline (past its first entry, which goes alone whatever its size). 2 MiB is
# over 1,000 typical entries, so it rarely cuts a batch of small events, and one round trip
# per 2 MiB is small beside sending them; the client's copies of the pipelines stuck on a
# hung Redis stay near `pool.size` x 2 MiB (MAX_BATCH large events alone could be GBs).
MAX_BATCH_BYTES = 2 * 1024 * 1024
# A writer woken for fewer than LINGER_BELOW entries waits this long for more. A round
# trip costs the pod far more CPU than an entry, and at a few thousand events a second
# spread over `pool.size` writers a batch taken at once holds one or two entries; one
# taken LINGER_S later holds dozens, and an entry that shows in the cache that much later
# is late by nothing anyone reading it can tell.
LINGER_S = 0.02
LINGER_BELOW = 100
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 1.0

_ALL, _ERROR = int(Target.ALL), int(Target.ERROR)


class Writers:
    """`pool.size` writer loops draining the queue into Redis."""

    def __init__(
        self,
        queue: EventQueue,
        storage: Storage,
        metrics: Metrics,
        health: RedisHealth,
        on_written: Callable[[set[str]], None],
        tail: TailSwitch | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._storage = storage
        self._metrics = metrics
        self._health = health
        self._on_written = on_written
        self._tail = tail
        self._clock = clock
        self._activity: ActivityCounter | None = None  # count_activity()
        self.errors = ErrorTally(clock)  # error signatures, counted once their entries are written
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
            batch, size = self._queue.take(shard, MAX_BATCH, MAX_BATCH_BYTES)
            if not batch:
                if self._stopping:
                    return
                continue
            try:
                written = await self.write(batch, size)
            finally:
                self._queue.done(len(batch), size)
            if written:
                backoff = BACKOFF_START_S
                continue
            # Redis failed: keep what is queued and wait for it to answer again.
            while not self._stopping:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                try:
                    await self._storage.ping()
                except StoreUnavailable as e:
                    self._health.failed(e, RedisOperation.PING)
                    continue
                self._health.ok()
                break

    async def write(self, batch: list[QueuedEntry], size: int = 0) -> bool:
        """Write one batch of `size` bytes; on failure count it as dropped. True when
        written. The caller tells the queue it is done with the batch."""
        # Group per id first: one key string per list, not one per entry.
        per_id: dict[tuple[Namespace, str], tuple[list[bytes], list[bytes]]] = {}
        journey: set[str] = set()  # the journey index's members (one per event id and list)
        for namespace, id_, target, data, event_id, _ in batch:
            if event_id:
                journey.add(journey_member(event_id, namespace, id_, not target & _ALL))
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
        tail = tail_message(per_id) if self._tail is not None and self._tail.on else None
        started = time.perf_counter()
        try:
            to_trim = await self._storage.write(lists, ids, self._clock(), tail, size, journey)
        except StoreUnavailable as e:
            self._health.failed(e, RedisOperation.WRITE)
            self._metrics.dropped[DropReason.REDIS_ERROR].inc(len(batch))
            return False
        except asyncio.CancelledError:
            self._metrics.dropped[DropReason.SHUTDOWN].inc(len(batch))
            raise
        self._metrics.redis_write_seconds.observe(time.perf_counter() - started)
        self._health.ok()
        self._count_cached(batch, per_id)
        if self._activity is not None:
            self._activity.add_cached(per_id, self._clock())
        self.errors.add(batch)
        self._on_written(to_trim)
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

    def count_activity(self, counter: ActivityCounter) -> None:
        """Count each written batch's entries per id and minute in `counter` too (GET
        /api/v1/events/activity)."""
        self._activity = counter

    def stop(self) -> None:
        """Write what is queued, then return from `run`."""
        self._stopping = True
        self._queue.wake_all()

    async def drain(self, loops: list[asyncio.Task[None]], timeout_s: float | None) -> None:
        """Stop, and let the writer `loops` empty the queue within `timeout_s` (None: no
        limit); what is left is dropped and counted (reason shutdown)."""
        self.stop()
        if loops:
            _, pending = await asyncio.wait(loops, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        left = self._queue.depth
        if left:
            self._metrics.dropped[DropReason.SHUTDOWN].inc(left)
