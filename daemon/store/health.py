"""Whether Redis answers: one shared view, mirrored in `events_cache_redis_up`.

Writers, the trimmer, the limited-count flush and the health probe all report here, so
/readyz and the metric agree, and an outage is logged once per interval, never per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from daemon.metrics import Metrics

ERROR_LOG_INTERVAL_S = 10.0

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

    def failed(self, error: BaseException, what: str) -> None:
        """Record a failure; log at most once per interval, never per event."""
        self.up = False
        self._metrics.redis_up.set(0)
        self.last_error = f"{type(error).__name__}: {error}"
        now = self._monotonic()
        if now - self._last_logged >= ERROR_LOG_INTERVAL_S:
            self._last_logged = now
            log.warning("redis unavailable", operation=what, error=self.last_error)
