"""The ingest listener's server: aiohttp's low-level server, one handler, no router.

The ingest serves two routes, so one handler dispatches on the path itself: no
application, router or middleware on the hot path. What they did is done here:
the token id is taken from the path as aiohttp's router took it (the path with every
escape decoded but %2F and %25, those two decoded in the id), an unknown path is a
JSON 404, another method a JSON 405 with `Allow: POST`, an unexpected exception a
JSON 500 whose traceback goes to the log only. Request times are counted in plain
numbers (`RequestTimes`) that join the HTTP duration histogram at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from daemon.core.wire import NDJSON_EVENTS_PATH, TOKEN_EVENTS_PATH
from daemon.metrics import RequestTimes
from daemon.web.ingest import Intake, ndjson_events, token_events
from daemon.web.middleware import KNOWN_METHODS, as_json
from daemon.web.protocol import JsonServer
from daemon.web.responses import error_response

log = structlog.get_logger(__name__)

INGEST_NOT_FOUND = (
    "Not Found: this is the events-cache ingest listener, which takes POST "
    f"{TOKEN_EVENTS_PATH} and POST {NDJSON_EVENTS_PATH}; the query API and the viewer "
    "are on the API listener (sidecar.api.listen)"
)
UNMATCHED = "unmatched"  # the route label of a 404 or 405, as aiohttp's router gave it
_PREFIX, _SUFFIX = TOKEN_EVENTS_PATH.split("{token_id}")
_START, _END = len(_PREFIX), -len(_SUFFIX)


def token_of(path: str) -> str | None:
    """The token id of a `/v1/token/{token_id}/events` path (as yarl's `path_safe` gives
    it), or None when the path is not one: the router's `[^{}/]+`, then %2F and %25."""
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    value = path[_START:_END]
    if not value or "/" in value or "{" in value or "}" in value:
        return None
    if "%" in value:
        return value.replace("%2F", "/").replace("%25", "%")
    return value


class IngestHandler:
    """The low-level server's one handler: dispatch, JSON errors, request times."""

    def __init__(self, intake: Intake, times: RequestTimes) -> None:
        self._intake = intake
        self._times = times

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        route = UNMATCHED
        try:
            path = request.rel_url.path_safe
            token = None if path == NDJSON_EVENTS_PATH else token_of(path)
            if token is None and path != NDJSON_EVENTS_PATH:
                response = error_response(404, INGEST_NOT_FOUND)
            elif request.method != "POST":
                response = error_response(405, "Method Not Allowed")
                response.headers["Allow"] = "POST"
            elif token is None:
                route = NDJSON_EVENTS_PATH
                response = await ndjson_events(self._intake, request)
            else:
                route = TOKEN_EVENTS_PATH
                response = await token_events(self._intake, request, token)
        except web.HTTPException as e:
            response = as_json(e)
        except Exception:
            log.exception("request failed", route=route, method=request.method)
            response = error_response(500, "internal error; see the sidecar's log")
        method = request.method if request.method in KNOWN_METHODS else "other"
        self._times.observe(route, method, response.status, time.perf_counter() - started)
        return response


def ingest_server(intake: Intake, times: RequestTimes, **kwargs: Any) -> JsonServer:
    """The ingest's low-level server; `kwargs` go to JsonServer (`header_read_timeout_s`)
    and each connection's handler."""
    loop = asyncio.get_running_loop()
    max_size = intake.max_request_bytes

    def request_factory(
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        # What Application._make_request does, with the ingest's body limit.
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=max_size
        )

    return JsonServer(IngestHandler(intake, times), request_factory=request_factory, **kwargs)
