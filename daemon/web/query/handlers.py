"""HTTP handlers of the query API: admin token, parameters, answer or error.

Errors are {"message": ...}: 400 for a parameter (named), 401 for the token, 503 when
Redis does not answer. The token is never logged.
"""

from __future__ import annotations

from aiohttp import web
from redis.exceptions import RedisError

from daemon.core.wire import CACHE_PATH, UNAUTHORIZED
from daemon.web.auth import TOKENS, TokenCheck
from daemon.web.query.params import QueryError, parse_query
from daemon.web.query.service import QueryService
from daemon.web.responses import error_response, json_response

QUERY = web.AppKey("query", QueryService)


async def events_cache(request: web.Request) -> web.Response:
    """GET /api/v1/events/cache."""
    if not request.app[TOKENS].allows(request):
        return error_response(401, UNAUTHORIZED)
    service = request.app[QUERY]
    try:
        query = parse_query(request.query, service.size)
    except QueryError as e:
        return error_response(400, str(e))
    try:
        return json_response(await service.events_cache(query))
    except (RedisError, OSError) as e:
        return error_response(503, f"Redis unavailable: {type(e).__name__}: {e}")


def add_query_routes(app: web.Application, service: QueryService, tokens: TokenCheck) -> None:
    """Serve the query API on `app`."""
    app[QUERY] = service
    app[TOKENS] = tokens
    app.router.add_get(CACHE_PATH, events_cache)
