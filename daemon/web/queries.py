"""HTTP handlers of the query API: admin token, parameters, answer or error.

Errors are {"message": ...}: 400 for a parameter (named), 401 for the token, 503 when
Redis does not answer (reported to RedisHealth under the handler's operation, so it is
counted in `events_cache_redis_errors_total`). The admin token is never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from daemon.core.model import RedisOperation
from daemon.core.wire import CACHE_PATH, IDS_PATH, JSON, TRUNCATED_HEADER
from daemon.query.params import QueryError, parse_ids_query, parse_query, parse_reset
from daemon.query.service import QueryService
from daemon.store.client import StoreUnavailable
from daemon.store.health import RedisHealth
from daemon.store.index import Cursor, CursorError
from daemon.web.auth import TOKENS, TokenCheck
from daemon.web.responses import error_response, json_response

QUERY = web.AppKey("query", QueryService)
HEALTH = web.AppKey("health", RedisHealth)

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(operation: RedisOperation) -> Callable[[Handler], Handler]:
    """The admin token first; then QueryError as 400, and Redis failures as 503 and
    reported as a failure of `operation`."""

    def decorate(handler: Handler) -> Handler:
        async def guard(request: web.Request) -> web.StreamResponse:
            refused = request.app[TOKENS].refusal(request)
            if refused is not None:
                return error_response(401, refused)
            try:
                return await handler(request)
            except QueryError as e:
                return error_response(400, str(e))
            except StoreUnavailable as e:
                request.app[HEALTH].failed(e, operation)
                return error_response(503, f"Redis unavailable: {type(e).__name__}: {e}")

        return guard

    return decorate


@guarded(RedisOperation.QUERY)
async def events_cache(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/cache: Jitsu's answer, with filters, bounded in events and bytes."""
    service = request.app[QUERY]
    answer = await service.events_cache(parse_query(request.query, service.size))
    response = web.Response(body=answer.body, content_type=JSON)
    if answer.truncated:
        response.headers[TRUNCATED_HEADER] = "true"
    return response


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
    deleted = await request.app[QUERY].reset(query)
    log.info(
        "cache reset",
        namespace=str(query.namespace),
        requested_ids=len(query.ids),
        whole_namespace=query.everything,
        deleted_ids=deleted,
    )
    return json_response({"deleted_ids": deleted})


def add_query_routes(
    app: web.Application, service: QueryService, tokens: TokenCheck, health: RedisHealth
) -> None:
    """Serve the query API on `app`."""
    app[QUERY] = service
    app[TOKENS] = tokens
    app[HEALTH] = health
    app.router.add_get(CACHE_PATH, events_cache)
    app.router.add_delete(CACHE_PATH, reset)
    app.router.add_get(IDS_PATH, ids_summary)
