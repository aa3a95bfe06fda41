"""Operations endpoints of the API listener: /healthz, /readyz, /metrics, /openapi.json.

/readyz never depends on Redis: the sidecar's readiness counts toward the ingest pod's,
and a Redis outage must not take the ingest out of its Service. Redis state is in the
body (and in metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from daemon.core.wire import (
    HEALTHZ_PATH,
    JSON,
    METRICS_PATH,
    NDJSON_EVENTS_PATH,
    OPENAPI_PATH,
    READYZ_PATH,
    TOKEN_EVENTS_PATH,
)
from daemon.metrics import Metrics
from daemon.pipeline.queue import EventQueue
from daemon.store.health import RedisHealth
from daemon.web.openapi import build_openapi
from daemon.web.responses import error_response, json_response


@dataclass(slots=True)
class Lifecycle:
    """Where the daemon is in its life, as /readyz reports it."""

    ready: bool = False
    draining: bool = False


@dataclass(frozen=True, slots=True)
class OpsState:
    """What /readyz reads."""

    lifecycle: Lifecycle
    health: RedisHealth
    queue: EventQueue


OPS = web.AppKey("ops", OpsState)


async def healthz(_: web.Request) -> web.Response:
    """200 while the event loop answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 once the listeners are up; Redis state in the body only."""
    state = request.app[OPS]
    ready = state.lifecycle.ready
    body = {
        "status": "ready" if ready else "starting",
        "draining": state.lifecycle.draining,
        "redis": "up" if state.health.up else "down",
        "redis_error": state.health.last_error,
        "queue_depth": state.queue.depth,
        "queue_bytes": state.queue.bytes,
    }
    return json_response(body, 200 if ready else 503)


def add_ops_routes(
    app: web.Application, state: OpsState, metrics: Metrics, version: str, ingest_url: str
) -> None:
    """Serve the operations endpoints on `app`."""
    app[OPS] = state
    openapi = orjson.dumps(build_openapi(version, ingest_url))

    async def openapi_json(_: web.Request) -> web.Response:
        return web.Response(body=openapi, content_type=JSON)

    app.router.add_get(METRICS_PATH, make_aiohttp_handler(metrics.registry))
    app.router.add_get(HEALTHZ_PATH, healthz)
    app.router.add_get(READYZ_PATH, readyz)
    app.router.add_get(OPENAPI_PATH, openapi_json)
    misdirected = (
        "Not Found: this is the events-cache API listener (sidecar.api.listen); events go "
        f"to the ingest listener, {ingest_url}"
    )

    async def ingest_path(_: web.Request) -> web.Response:
        return error_response(404, misdirected)

    for path in (TOKEN_EVENTS_PATH, NDJSON_EVENTS_PATH):
        app.router.add_route("*", path, ingest_path)
