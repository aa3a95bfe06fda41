"""The mirror listener: the target of a mirrored copy of the ingest's traffic.

nginx's `mirror`, Envoy's `request_mirror_policies` and Istio's `mirror` send a copy of
each request and throw the answer away, so the listener takes any method and path,
finds the API key with the `token_from` rules and caches the body exactly as
`POST /v1/token/{token}/events` does (same body limits, same parse, same admission); it
answers 202 once the body is read, never waiting for Redis. A request without a key is
counted as invalid. It never sits in the ingest's own request path.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiohttp import web

from daemon.core.accounting import Outcome
from daemon.core.parse import LineError, TooManyEvents, parse_token_body
from daemon.core.tokenfrom import TokenFinder
from daemon.core.wire import ANY_PATH
from daemon.metrics import Metrics
from daemon.web.ingest import Intake, accepted, read_body
from daemon.web.middleware import observe

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Mirror:
    """What the mirror handler needs: the ingest's intake and the key rules."""

    intake: Intake
    finder: TokenFinder


MIRROR = web.AppKey("mirror", Mirror)


async def mirrored(request: web.Request) -> web.Response:
    """Any method, any path: a mirrored copy of an ingest request."""
    mirror = request.app[MIRROR]
    intake = mirror.intake
    body = await read_body(intake, request)
    if isinstance(body, web.Response):
        return body
    found = mirror.finder.find(request.path, request.query, request.headers, body)
    if found.token is None:
        reason = mirror.finder.reason()
        intake.metrics.invalid.inc()
        log.debug("mirrored request not cached", reason=reason, method=request.method)
        return accepted(Outcome(), 1, [LineError(1, reason)])
    try:
        events = parse_token_body(
            body,
            found.token,
            intake.max_malformed_bytes,
            parsed=found.parsed,
            max_events=intake.max_events,
        )
    except TooManyEvents as e:
        return intake.too_many_events(e.count)
    return accepted(intake.admission.submit(events))


def mirror_application(metrics: Metrics, mirror: Mirror) -> web.Application:
    """The mirror listener's application: one route for every method and path."""
    app = web.Application(
        middlewares=[observe("mirror", metrics.http_duration)],
        client_max_size=mirror.intake.max_request_bytes,
    )
    app[MIRROR] = mirror
    app.router.add_route("*", ANY_PATH, mirrored)
    return app
