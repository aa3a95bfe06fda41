"""The API listener's access log: one structured line per request, tokens redacted.

aiohttp's own access logger writes the request line as received, query string included,
so with `server.allow_token_in_query` the admin token would reach the log (access lines
are logged at debug level). This one logs the path with the value of every `token`
query parameter replaced, however the parameter's name is percent-encoded.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

import structlog
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

REDACTED = "<redacted>"
SECRET_PARAMETERS = frozenset({"token"})


def redact_query(path_qs: str) -> str:
    """`path?query` with the values of the secret parameters replaced."""
    path, sep, query = path_qs.partition("?")
    if not sep:
        return path_qs
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        if unquote_plus(name) in SECRET_PARAMETERS:
            part = f"{name}={REDACTED}" if eq else part
        parts.append(part)
    return f"{path}?{'&'.join(parts)}"


class AccessLogger(AbstractAccessLogger):
    """Logs method, redacted path, status, size and time of each request (info level on
    the `aiohttp.access` logger, which `daemon.log` enables only at debug)."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._log = structlog.get_logger(logger.name)

    @property
    def enabled(self) -> bool:
        """Skip the work entirely unless the access logger is on."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """One line for one request."""
        self._log.info(
            "request",
            remote=request.remote,
            method=request.method,
            path=redact_query(request.raw_path),
            status=response.status,
            bytes=response.body_length,
            duration_ms=round(time * 1000, 3),
            user_agent=request.headers.get("User-Agent", ""),
        )
