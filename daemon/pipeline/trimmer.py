"""The trim loop: every `trim_interval_ms`, cut each list written since the last pass.

LTRIM (and EXPIRE when a TTL is set) runs only on keys written since the last pass,
all in one pipeline, so its cost follows the write rate, not the number of ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from daemon.core.model import RedisOperation
from daemon.metrics import Metrics
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth
from daemon.store.storage import Storage


class Trimmer:
    """Collects the keys the writers touched and trims them in one pipeline per pass."""

    def __init__(
        self,
        storage: Storage,
        metrics: Metrics,
        health: RedisHealth,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._metrics = metrics
        self._health = health
        self._clock = clock
        self._dirty: set[str] = set()

    def mark(self, keys: set[str]) -> None:
        """Remember keys written since the last pass."""
        self._dirty |= keys

    @property
    def pending(self) -> int:
        """How many keys wait for the next pass."""
        return len(self._dirty)

    async def trim_once(self) -> None:
        """One pass; on a Redis error the keys stay marked for the next pass."""
        if not self._dirty:
            return
        keys, self._dirty = self._dirty, set()
        started = time.perf_counter()
        try:
            await self._storage.trim(keys, self._clock())
        except StoreUnavailable as e:
            self._dirty |= keys
            self._health.failed(e, RedisOperation.TRIM)
            return
        self._metrics.trim_seconds.observe(time.perf_counter() - started)
