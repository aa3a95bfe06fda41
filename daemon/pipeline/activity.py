"""Activity counts to Redis: every sidecar adds what it counted once a second, so that
GET /api/v1/events/activity on any pod covers all of them (as the limited counts are).

A flush writes the cells in pipelines of CELLS_PER_PIPELINE, one after the other; the
cells of a pipeline that failed, and of those not sent after it, go back to the counter
for the next flush, within its cap (what does not fit is counted as lost). A pipeline
that failed after Redis applied it is counted twice by the retry: at-least-once.
"""

from __future__ import annotations

from itertools import islice

from daemon.core.activity import ActivityCounter
from daemon.core.model import RedisOperation
from daemon.metrics import Metrics
from daemon.store.activity import ActivityStore
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth

# Cells per pipeline: up to four HINCRBYs each, so a pipeline stays near 1,000 commands
# (as the trim's; a larger one is packed by redis-py in a worker thread).
CELLS_PER_PIPELINE = 250


class ActivityFlusher:
    """Moves this sidecar's activity counts to Redis."""

    def __init__(
        self,
        counter: ActivityCounter,
        store: ActivityStore,
        health: RedisHealth,
        metrics: Metrics,
    ) -> None:
        self._counter = counter
        self._store = store
        self._health = health
        self._metrics = metrics

    async def flush_once(self) -> None:
        """Write the pending cells, then the EXPIREATs of the keys they created; keep
        what failed for the next flush."""
        cells = self._counter.take()
        pending = iter(list(cells.items()))
        while chunk := dict(islice(pending, CELLS_PER_PIPELINE)):
            try:
                await self._store.add(chunk)
            except StoreUnavailable as e:
                self._health.failed(e, RedisOperation.ACTIVITY)
                self._counter.restore({**chunk, **dict(pending)})
                break
        try:
            await self._store.expire_new()  # kept by the store when it fails
        except StoreUnavailable as e:
            self._health.failed(e, RedisOperation.ACTIVITY)
        lost = self._counter.take_lost()
        if lost:
            self._metrics.activity_lost.inc(lost)
