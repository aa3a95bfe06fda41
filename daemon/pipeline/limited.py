"""Shared bookkeeping: limited counts flushed to Redis, idle rate limiters forgotten.

Every sidecar adds its limited counts to per-second hash fields in Redis about once a
second, so `last_minute_limited` in any pod's answer covers all pods sharing the Redis;
and, in the same turn, the error signatures its writers counted (`daemon.pipeline.errors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.core.model import RedisOperation
from daemon.pipeline.errors import ErrorFlusher, ErrorTally
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth
from daemon.store.storage import Storage

FLUSH_INTERVAL_S = 1.0
SWEEP_INTERVAL_S = 10.0
MAX_PENDING_SLOTS = 100_000  # counts kept for a retry while Redis is away


class LimitedFlusher:
    """Moves this sidecar's limited counts to Redis and sweeps idle limiters."""

    def __init__(
        self,
        counter: LimitedCounter,
        limiters: RateLimiters,
        storage: Storage,
        health: RedisHealth,
        errors: ErrorTally | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counter = counter
        self._limiters = limiters
        self._storage = storage
        self._health = health
        self._monotonic = monotonic
        self._retry: dict[tuple[object, int], int] = {}
        self._last_sweep = monotonic()
        self._errors = None if errors is None else ErrorFlusher(errors, storage.errors, health)

    async def flush_once(self) -> None:
        """Write pending counts (and error signatures); keep them for the next try if
        Redis fails."""
        if self._errors is not None:
            await self._errors.flush_once()
        pending = self._counter.take()
        for slot, n in self._retry.items():
            pending[slot] = pending.get(slot, 0) + n
        self._retry = {}
        if pending:
            try:
                await self._storage.add_limited(pending)
            except StoreUnavailable as e:
                self._health.failed(e, RedisOperation.LIMITED)
                if len(pending) <= MAX_PENDING_SLOTS:
                    self._retry = pending
        now = self._monotonic()
        if now - self._last_sweep >= SWEEP_INTERVAL_S:
            self._last_sweep = now
            self._limiters.sweep(now)
