"""HTTP handlers of the query API: parameters in, the read path's answer out, each
behind the admin token and its errors (`daemon.web.auth.guarded`)."""

from __future__ import annotations

import structlog
from aiohttp import web

from daemon.core.model import RedisOperation
from daemon.core.wire import CACHE_PATH, IDS_PATH
from daemon.query.params import (
    QueryError,
    ResetQuery,
    parse_ids_query,
    parse_query,
    parse_reset,
)
from daemon.query.service import QueryService
from daemon.store.index import Cursor, CursorError
from daemon.web.auth import guarded
from daemon.web.responses import bounded_response, json_response

QUERY = web.AppKey("query", QueryService)

log = structlog.get_logger(__name__)


@guarded(RedisOperation.QUERY)
async def events_cache(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/cache: Jitsu's answer, with filters, bounded in events and bytes."""
    service = request.app[QUERY]
    answer = await service.events_cache(parse_query(request.query, service.size))
    return bounded_response(answer.body, answer.truncated)


@guarded(RedisOperation.SUMMARY)
async def ids_summary(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/ids: which ids the cache holds, most recently active first."""
    query = parse_ids_query(request.query)
    try:
        cursor = Cursor.decode(query.cursor) if query.cursor else None
    except CursorError as e:
        raise QueryError(str(e)) from e
    return json_response(await request.app[QUERY].summary(query, cursor))


@guarded(RedisOperation.RESET)
async def reset(request: web.Request) -> web.StreamResponse:
    """DELETE /api/v1/events/cache: forget ids (or a whole namespace)."""
    query = parse_reset(request.query)
    if query.capture:
        return await _reset_captured(request, query)
    deleted = await request.app[QUERY].reset(query)
    log.info(
        "cache reset",
        namespace=str(query.namespace),
        requested_ids=len(query.ids),
        whole_namespace=query.everything,
        deleted_ids=deleted,
    )
    return json_response({"deleted_ids": deleted})


async def _reset_captured(request: web.Request, query: ResetQuery) -> web.StreamResponse:
    """DELETE /api/v1/events/cache?capture=: a test run's entries, the others kept."""
    try:
        cursor = Cursor.decode(query.cursor) if query.cursor else None
    except CursorError as e:
        raise QueryError(f"with capture, {e}") from e
    answer = await request.app[QUERY].reset_captured(query, cursor)
    log.info(
        "cache reset by capture tag",
        namespace=str(query.namespace),
        capture=query.capture,  # a test run's tag, not a secret
        requested_ids=len(query.ids),
        deleted_events=answer["deleted_events"],
    )
    return json_response(answer)


def add_query_routes(app: web.Application, service: QueryService) -> None:
    """Serve the query API on `app` (its guard installed: `daemon.web.auth.install`)."""
    app[QUERY] = service
    app.router.add_get(CACHE_PATH, events_cache)
    app.router.add_delete(CACHE_PATH, reset)
    app.router.add_get(IDS_PATH, ids_summary)
