"""JSON responses of the API listener: orjson-encoded, errors as {"message": ...}."""

from __future__ import annotations

import orjson
from aiohttp import web

from daemon.core.wire import JSON, TRUNCATED_HEADER


def json_response(doc: object, status: int = 200) -> web.Response:
    """A JSON response without aiohttp's slower stdlib encoder."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type=JSON)


def error_response(status: int, message: str) -> web.Response:
    """The error shape of both APIs: {"message": ...}."""
    return json_response({"message": message}, status)


def bounded_response(body: bytes, truncated: bool) -> web.Response:
    """A query's JSON answer, with `X-Events-Cache-Truncated: true` when its bounds (in
    events or bytes) left something out."""
    response = web.Response(body=body, content_type=JSON)
    if truncated:
        response.headers[TRUNCATED_HEADER] = "true"
    return response
