"""The query service: a parsed query in, Jitsu Classic's answer out, read from Redis.

Any pod answers for all: events, id index and limited counts are all read from the
shared Redis, in one pipeline per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from daemon.core.entry import decode
from daemon.core.limiter import last_minute_total
from daemon.store.storage import Storage
from daemon.web.query.params import CacheQuery


class QueryService:
    """Reads cached events and counts for a query from the shared Redis."""

    def __init__(
        self,
        storage: Storage,
        size: int,
        window_s: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self.size = size
        self._window_s = window_s
        self._wall = wall

    async def events_cache(self, query: CacheQuery) -> dict[str, Any]:
        """The answer of GET /api/v1/events/cache, in Jitsu's field order."""
        ids = (
            query.ids if query.ids is not None else tuple(await self._storage.ids(query.namespace))
        )
        now_s = int(self._wall())
        per_id = (
            await self._storage.read(query.namespace, ids, query.collection, query.limit, now_s)
            if ids
            else []
        )
        events = [decode(raw) for found in per_id for raw in found.entries]
        return {
            "total_events": sum(found.total for found in per_id),
            "last_minute_limited": sum(last_minute_total(f.limited_slots, now_s) for f in per_id),
            "cache_capacity_per_interval": self.size,
            "interval_seconds": self._window_s,
            "response_events": len(events),
            "events": events,
        }
