"""The query API: GET /api/v1/events/cache in Jitsu Classic's exact response shape.

Any pod answers for all: events, id index and limited counts are all read from the
shared Redis, in one pipeline per request.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from daemon.entry import Collection, Namespace, decode
from daemon.ingest import error_response, json_response
from daemon.limiter import last_minute_total
from daemon.storage import Storage

DEFAULT_LIMIT = 100
TOKEN_HEADER = "X-Admin-Token"
UNAUTHORIZED = "Admin token does not match"
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class QueryError(ValueError):
    """A query parameter is wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class CacheQuery:
    """The parsed parameters of one query."""

    namespace: Namespace
    collection: Collection
    limit: int
    ids: tuple[str, ...] | None  # None: every id of the namespace


def parse_query(params: Mapping[str, str], size: int) -> CacheQuery:
    """Validate the query string; raise QueryError with a message naming the parameter."""
    namespace_text = params.get("namespace", "") or Namespace.DESTINATION
    if namespace_text not in (Namespace.TOKEN, Namespace.DESTINATION):
        raise QueryError(
            f"namespace must be 'token' or 'destination', got {namespace_text[:100]!r}"
        )
    status = params.get("status", "")
    if status not in ("", "error"):
        raise QueryError(f"status must be empty or 'error', got {status[:100]!r}")
    limit_text = params.get("limit", "")
    if limit_text == "":
        limit = DEFAULT_LIMIT
    else:
        if not _INTEGER.fullmatch(limit_text):
            raise QueryError("limit must be int")
        limit = int(limit_text)
        if limit < 0:
            raise QueryError("limit must be >= 0")
    ids: tuple[str, ...] | None = None
    if "ids" in params:
        ids = tuple(dict.fromkeys(i.strip() for i in params["ids"].split(",") if i.strip()))
    return CacheQuery(
        namespace=Namespace(namespace_text),
        collection=Collection.ERROR if status == "error" else Collection.ALL,
        limit=min(limit, size),
        ids=ids,
    )


class TokenCheck:
    """Admin token check in constant time; several tokens may be valid during rotation."""

    def __init__(self, tokens: tuple[str, ...], allow_in_query: bool) -> None:
        self._tokens = [t.encode() for t in tokens]
        self._allow_in_query = allow_in_query

    def allows(self, request: web.Request) -> bool:
        """True when the request carries a configured token (header, or query if allowed)."""
        given = request.headers.get(TOKEN_HEADER)
        if given is None and self._allow_in_query:
            given = request.query.get("token")
        if given is None:
            return False
        candidate = given.encode("utf-8", "surrogateescape")
        matched = False
        for token in self._tokens:  # compare with every token: no early exit
            matched |= hmac.compare_digest(candidate, token)
        return matched


class QueryApi:
    """Serves cached events from the shared Redis."""

    def __init__(
        self,
        storage: Storage,
        tokens: TokenCheck,
        size: int,
        window_s: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._tokens = tokens
        self._size = size
        self._window_s = window_s
        self._wall = wall

    async def events_cache(self, request: web.Request) -> web.Response:
        """GET /api/v1/events/cache."""
        if not self._tokens.allows(request):
            return error_response(401, UNAUTHORIZED)
        try:
            query = parse_query(request.query, self._size)
        except QueryError as e:
            return error_response(400, str(e))
        try:
            return json_response(await self._answer(query), 200)
        except (RedisError, OSError) as e:
            return error_response(503, f"Redis unavailable: {type(e).__name__}: {e}")

    async def _answer(self, query: CacheQuery) -> dict[str, Any]:
        ids = (
            query.ids if query.ids is not None else tuple(await self._storage.ids(query.namespace))
        )
        now_s = int(self._wall())
        per_id = (
            await self._storage.read(query.namespace, ids, query.collection, query.limit, now_s)
            if ids
            else []
        )
        events = [decode(raw, verbatim=True) for found in per_id for raw in found.entries]
        return {
            "total_events": sum(found.total for found in per_id),
            "last_minute_limited": sum(last_minute_total(f.limited_slots, now_s) for f in per_id),
            "cache_capacity_per_interval": self._size,
            "interval_seconds": self._window_s,
            "response_events": len(events),
            "events": events,
        }

    def routes(self) -> list[web.RouteDef]:
        """The query route."""
        return [web.get("/api/v1/events/cache", self.events_cache)]
