"""HTTP middleware of the API listener (aiohttp): JSON errors and request metrics.

Every error leaves as {"message": ...}: aiohttp's own 404/405/413 included, and an
unexpected exception as a 500 without a traceback (the traceback goes to the log).
"""

from __future__ import annotations

import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Histogram

from daemon.core.wire import KNOWN_METHODS
from daemon.web.responses import error_response

log = structlog.get_logger(__name__)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def as_json(error: web.HTTPException) -> web.Response:
    """An aiohttp HTTP exception as our JSON error, its Allow header kept."""
    response = error_response(
        error.status,
        error.reason if error.text is None else error.text.removeprefix(f"{error.status}: "),
    )
    allow = error.headers.get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


def observe(listener: str, histogram: Histogram, not_found: str = "") -> Middleware:
    """Time each request per route and status, and shape every error as JSON; a path no
    route matches is answered with `not_found` when given (saying which listener this is)."""
    children: dict[tuple[str, str, int], Histogram] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPNotFound as e:
            response = error_response(404, not_found) if not_found else as_json(e)
        except web.HTTPException as e:
            response = as_json(e)
        except Exception:
            log.exception("request failed", route=_route(request), method=request.method)
            response = error_response(500, "internal error; see the sidecar's log")
        method = request.method if request.method in KNOWN_METHODS else "other"
        key = (_route(request), method, response.status)
        child = children.get(key)
        if child is None:
            child = children[key] = histogram.labels(listener, key[0], method, str(key[2]))
        child.observe(time.perf_counter() - started)
        return response

    return middleware
