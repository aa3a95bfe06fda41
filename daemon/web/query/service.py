"""The query service: parsed queries in, answers out, read from the shared Redis.

Any pod answers for all: events, the id index and the limited counts all live in
Redis. Jitsu Classic's answer keeps its exact shape; filters and paging narrow the
events it holds, and `max_response_events` bounds it (the caller is told when it is cut).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.core.limiter import last_minute_total
from daemon.core.stamp import rfc3339
from daemon.store.erase import erase_ids, erase_namespace
from daemon.store.index import Cursor, index_page
from daemon.store.storage import Storage
from daemon.web.query.params import CacheQuery, IdsQuery, ResetQuery
from daemon.web.query.selection import Selection, find_anchor, parse_entry

CHUNK = 500  # ids per pipeline


@dataclass(frozen=True, slots=True)
class CacheAnswer:
    """Jitsu's answer, and whether `max_response_events` cut it."""

    body: dict[str, Any]
    truncated: bool


class QueryService:
    """Reads cached events, the id summary and counts; forgets ids on request."""

    def __init__(
        self,
        storage: Storage,
        size: int,
        window_s: int,
        max_events: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self.size = size
        self._window_s = window_s
        self._max_events = max_events
        self._wall = wall

    async def events_cache(self, query: CacheQuery) -> CacheAnswer:
        """GET /api/v1/events/cache, in Jitsu's field order."""
        storage = self._storage
        ids = query.ids if query.ids is not None else tuple(await storage.ids(query.namespace))
        now_s = int(self._wall())
        # Filters look at every cached entry of an id, not only the newest `limit`.
        count = (
            0
            if not query.limit
            else (max(self.size, query.limit) if query.filtered else query.limit)
        )
        selection = Selection(query, self._max_events)
        if query.before and count:
            selection.anchor_time = await self._anchor_time(query, ids, count, now_s)
        total = limited = 0
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            reading = count if not selection.full else 0
            for found in await storage.read(
                query.namespace, chunk, query.collection, reading, now_s
            ):
                total += found.total
                limited += last_minute_total(found.limited_slots, now_s)
                if reading:
                    selection.add(found.entries)
                elif count and found.total:
                    selection.truncated = True  # not read: the answer is already full
        body = {
            "total_events": total,
            "last_minute_limited": limited,
            "cache_capacity_per_interval": self.size,
            "interval_seconds": self._window_s,
            "response_events": len(selection.events),
            "events": selection.events,
        }
        return CacheAnswer(body, selection.truncated)

    async def _anchor_time(
        self, query: CacheQuery, ids: Sequence[str], count: int, now_s: int
    ) -> float | None:
        """The time of the `before` event, wherever among the ids' lists it is."""
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            found = await self._storage.read(query.namespace, chunk, query.collection, count, now_s)
            anchor = find_anchor((f.entries for f in found), query.before)
            if anchor is not None:
                return anchor
        return None

    async def summary(self, query: IdsQuery, cursor: Cursor | None) -> dict[str, Any]:
        """GET /api/v1/events/ids: the ids the cache holds, most recently active first."""
        page = await index_page(self._storage.client, query.namespace, query.limit, cursor, query.q)
        now_s = int(self._wall())
        names = [id_ for id_, _ in page.ids]
        found = await self._storage.summaries(query.namespace, names, now_s)
        rows = []
        for (id_, score), summary in zip(page.ids, found, strict=True):
            newest = parse_entry(summary.newest_error) if summary.newest_error else {}
            rows.append(
                {
                    "id": id_,
                    "total_events": summary.total,
                    "error_events": summary.errors,
                    "last_event_at": rfc3339(score),
                    "last_error_at": newest.get("timestamp") or None,
                    "last_error": newest.get("error") or None,
                    "last_minute_limited": last_minute_total(summary.limited_slots, now_s),
                }
            )
        return {
            "namespace": str(query.namespace),
            "ids": rows,
            "next_cursor": page.next.encode() if page.next else None,
        }

    async def reset(self, query: ResetQuery) -> int:
        """DELETE /api/v1/events/cache: how many ids had something to forget."""
        client, now_s = self._storage.client, int(self._wall())
        if query.everything:
            return await erase_namespace(client, query.namespace, now_s)
        return await erase_ids(client, query.namespace, query.ids, now_s)
