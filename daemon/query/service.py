"""The query service: parsed queries in, answers out, read from the shared Redis.

Any pod answers for all: events, the id index and the limited counts all live in
Redis. Jitsu Classic's answer keeps its exact shape; filters and paging narrow the
events it holds, and `max_response_events` and `max_response_bytes` bound it (the caller
is told when it is cut). The answer is written as it is gathered: each event's JSON once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.core.limiter import last_minute_total
from daemon.core.stamp import rfc3339
from daemon.query.backfill import Backfill, read_backfill
from daemon.query.errors import ErrorSignatures
from daemon.query.lists import Lists
from daemon.query.params import (
    MAX_CAPTURE_RESET_IDS,
    CacheQuery,
    IdsQuery,
    ResetQuery,
    StreamQuery,
)
from daemon.query.selection import Anchor, Selection, entry_time, has_uid, parse_entry
from daemon.store.index import Cursor
from daemon.store.storage import Storage

CHUNK = 500  # ids per pipeline of lengths and limited counts
SUMMARY_CHUNK = 100  # ids per pipeline of the summary (a default page: one)
LAST_ERROR_CHARS = 1024  # of an id's newest error in the summary; longer ones end in "…"

# The answer around its events, in Jitsu's field order; the events go between.
_HEAD = (
    b'{"total_events":%d,"last_minute_limited":%d,"cache_capacity_per_interval":%d,'
    b'"interval_seconds":%d,"response_events":%d,"events":['
)


@dataclass(frozen=True, slots=True)
class CacheAnswer:
    """Jitsu's answer as JSON, and whether `max_response_events` or
    `max_response_bytes` cut it."""

    body: bytes
    truncated: bool


def _answer(pieces: list[bytes], total: int, limited: int, service: QueryService) -> bytes:
    """The answer's JSON around the events' (one copy of them: the counts go on the
    first, the end on the last)."""
    head = _HEAD % (total, limited, service.size, service.window_s, len(pieces))
    if len(pieces) < 2:
        return b"%s%s]}" % (head, b"".join(pieces))
    pieces[0] = head + pieces[0]
    pieces[-1] += b"]}"
    return b",".join(pieces)


def _shortened(error: object) -> object:
    """An error message as the summary shows it: at most LAST_ERROR_CHARS and "…"."""
    if isinstance(error, str) and len(error) > LAST_ERROR_CHARS:
        return error[:LAST_ERROR_CHARS] + "…"
    return error


class QueryService:
    """Reads cached events, the id summary and counts; forgets ids on request."""

    def __init__(
        self,
        storage: Storage,
        size: int,
        window_s: int,
        max_events: int,
        max_bytes: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self.size = size
        self.window_s = window_s
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._wall = wall
        self.errors = ErrorSignatures(storage, max_bytes, wall)  # GET /api/v1/errors

    async def events_cache(self, query: CacheQuery) -> CacheAnswer:
        """GET /api/v1/events/cache, in Jitsu's field order."""
        ids = query.ids
        if ids is None:
            ids = tuple(await self._storage.ids(query.namespace))
        now_s = int(self._wall())
        # Filters look at every cached entry of an id, not only the newest `limit`.
        count = (
            0
            if not query.limit
            else (max(self.size, query.limit) if query.filtered else query.limit)
        )
        selection = Selection(query, self._max_events, self._max_bytes)
        if query.before and count:
            selection.anchor = await self._anchor(query, ids, count, now_s)
        lists = self._lists(query, count)
        total = limited = 0
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            room = 0 if selection.full else selection.room
            found = await lists.open(chunk, now_s, room)
            for n, (id_, events) in enumerate(zip(chunk, found, strict=True)):
                total += events.total
                limited += last_minute_total(events.limited_slots, now_s)
                if not count:
                    continue
                if selection.full:
                    # not read: the answer is already full (or holds the `uid` entry)
                    selection.truncated |= bool(events.total) and not query.uid
                    continue
                selection.begin(id_)
                async for page in lists.pages(n, lambda: selection.room):
                    if not selection.add(page):
                        break
        return CacheAnswer(_answer(selection.events, total, limited, self), selection.truncated)

    @property
    def max_events(self) -> int:
        """`max_response_events`: no answer (nor a stream's backfill) holds more."""
        return self._max_events

    async def backfill(self, query: StreamQuery) -> Backfill:
        """What a live-tail stream sends before it follows (`daemon.query.backfill`)."""
        return await read_backfill(
            self._storage, query, self.size, self._max_events, self._max_bytes, int(self._wall())
        )

    def _lists(self, query: CacheQuery, count: int) -> Lists:
        return Lists(self._storage, query.namespace, query.collection, count, self._max_bytes)

    async def _anchor(
        self, query: CacheQuery, ids: Sequence[str], count: int, now_s: int
    ) -> Anchor | None:
        """Where the `before` entry is, wherever among the ids' lists (page by page)."""
        lists = self._lists(query, count)
        room = self._max_bytes
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            await lists.open(chunk, now_s, room)
            for n, id_ in enumerate(chunk):
                async for page in lists.pages(n, lambda: room):
                    for raw in page:
                        if has_uid(raw, query.before):
                            return Anchor(id_, entry_time(parse_entry(raw)))
        return None

    async def summary(self, query: IdsQuery, cursor: Cursor | None) -> dict[str, Any]:
        """GET /api/v1/events/ids: the ids the cache holds, most recently active first."""
        page = await self._storage.index_page(query.namespace, query.limit, cursor, query.q)
        now_s = int(self._wall())
        names = [id_ for id_, _ in page.ids]
        found = []  # a pipeline per SUMMARY_CHUNK ids: each reads their newest errors whole
        for start in range(0, len(names), SUMMARY_CHUNK):
            chunk = names[start : start + SUMMARY_CHUNK]
            found += await self._storage.summaries(query.namespace, chunk, now_s)
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
                    "last_error": _shortened(newest.get("error")) or None,
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
        now_s = int(self._wall())
        if query.everything:
            return await self._storage.erase_namespace(query.namespace, now_s)
        return await self._storage.erase_ids(query.namespace, query.ids, now_s)

    async def reset_captured(self, query: ResetQuery, cursor: Cursor | None) -> dict[str, Any]:
        """DELETE /api/v1/events/cache?capture=: the entries carrying the tag, from the
        lists of the ids given, or of a page of the id index (most recently active first,
        MAX_CAPTURE_RESET_IDS of them: `next_cursor` goes on)."""
        ids, after = list(query.ids), None
        if query.by_index:
            page = await self._storage.index_page(query.namespace, MAX_CAPTURE_RESET_IDS, cursor)
            ids, after = [id_ for id_, _ in page.ids], page.next
        deleted = await self._storage.erase_captured(query.namespace, ids, query.capture)
        return {
            "deleted_events": deleted,
            "scanned_ids": len(ids),
            "next_cursor": after.encode() if after else None,
        }
