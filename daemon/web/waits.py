"""HTTP handler of the long poll: GET /api/v1/events/wait (`daemon.query.wait`), behind
the admin token and its errors (`daemon.web.auth.guarded`).

200 `{"matched": true, "events": [...]}` once `count` events matched; on timeout (or
when the daemon stops) 200 `{"matched": false, "events": [what matched so far]}`. 503
beyond `sidecar.api.max_waits` open waits on this pod, and when Redis fails. A client
that leaves frees its slot within GONE_CHECK_S: no request body is read, so aiohttp
tells nothing; the connection's transport says it closed.
"""

from __future__ import annotations

from aiohttp import web

from daemon.core.model import RedisOperation
from daemon.core.wire import WAIT_PATH
from daemon.query.wait import Waits
from daemon.query.waitquery import parse_wait
from daemon.web.auth import guarded
from daemon.web.responses import bounded_response, error_response

WAITS = web.AppKey("waits", Waits)
MAX_EVENTS = web.AppKey("wait_max_events", int)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@guarded(RedisOperation.TAIL)
async def wait(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/events/wait."""
    waits = request.app[WAITS]
    query = parse_wait(request.query, request.app[MAX_EVENTS], waits.rules_on)
    waiter = waits.open(query)
    if waiter is None:
        return error_response(
            503,
            f"too many waits open on this sidecar (sidecar.api.max_waits = {waits.max_waits}), "
            "or it is stopping; retry, or ask another pod",
        )
    try:
        await waits.run(waiter, lambda: _gone(request))
    finally:
        waits.close(waiter)
    if waiter.problem:
        return error_response(503, f"Redis unavailable: {waiter.problem}")
    return bounded_response(waiter.body(), waiter.truncated)


def add_wait_routes(app: web.Application, waits: Waits, max_events: int) -> None:
    """Serve the long poll on `app`; `count` at most `max_events` (max_response_events)."""
    app[WAITS] = waits
    app[MAX_EVENTS] = max_events
    app.router.add_get(WAIT_PATH, wait)
