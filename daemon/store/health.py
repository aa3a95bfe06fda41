"""Whether Redis answers: one shared view, mirrored in `events_cache_redis_up`.

Every Redis operation reports its failures here (writers, the trimmer, the limited-count
flush, the health probe, the queries, the summary, the reset and the live tail), so
/readyz, `events_cache_redis_up` and `events_cache_redis_errors_total{operation}` agree,
and an outage is logged once per interval, never per event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from daemon.core.model import RedisOperation
from daemon.metrics import Metrics
from daemon.store.client import StoreUnavailable

ERROR_LOG_INTERVAL_S = 10.0
PROBE_TIMEOUT_S = 1.5  # a PING slower than this is a failure: a frozen Redis shows soon

log = structlog.get_logger(__name__)


class RedisHealth:
    """Whether Redis answered last time, mirrored in `events_cache_redis_up`."""

    def __init__(self, metrics: Metrics, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._monotonic = monotonic
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

    async def probe(self, ping: Callable[[], Awaitable[None]]) -> None:
        """One health probe: `ping` answered within PROBE_TIMEOUT_S, or a failure."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await ping()
        except TimeoutError:
            late = TimeoutError(f"no answer to PING within {PROBE_TIMEOUT_S:g} s")
            self.failed(late, RedisOperation.PING)
        except StoreUnavailable as e:
            self.failed(e, RedisOperation.PING)
        else:
            self.ok()

    def failed(self, error: BaseException, operation: RedisOperation) -> None:
        """Record a failure: counted per operation, logged at most once per interval."""
        self._metrics.redis_errors[operation].inc()
        self.up = False
        self._metrics.redis_up.set(0)
        self.last_error = (
            str(error)
            if isinstance(error, StoreUnavailable)
            else (f"{type(error).__name__}: {error}")
        )
        now = self._monotonic()
        if now - self._last_logged >= ERROR_LOG_INTERVAL_S:
            self._last_logged = now
            log.warning("redis unavailable", operation=str(operation), error=self.last_error)
