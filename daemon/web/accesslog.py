"""The API listener's access log: one structured line per request, tokens redacted.

aiohttp's own access logger writes the request line as received, query string included,
so with `server.allow_token_in_query` the admin token would reach the log (access lines
are logged at debug level). This one logs the path with the value of every query
parameter that decodes to `token` replaced: whatever its case or percent-encoding, after
`&` or `;`, and when even its `=` is encoded (`token%3D...`, redacted whole).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

import structlog
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

REDACTED = "<redacted>"
SECRET_PARAMETERS = frozenset({"token"})


_SEPARATORS = re.compile(r"([&;])")  # kept in the split, so the line keeps its shape


def redact_query(path_qs: str) -> str:
    """`path?query` with the values of the secret parameters replaced."""
    path, sep, query = path_qs.partition("?")
    if not sep:
        return path_qs
    parts = []
    for part in _SEPARATORS.split(query):
        if _secret(part):
            name, eq, _ = part.partition("=")
            part = f"{name}={REDACTED}" if eq else REDACTED
        parts.append(part)
    return f"{path}?{''.join(parts)}"


def _secret(part: str) -> bool:
    """A parameter with a value whose name decodes to a secret one (any case, spaces
    around it ignored)."""
    name, eq, _ = unquote_plus(part).partition("=")
    return bool(eq) and name.strip().lower() in SECRET_PARAMETERS


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
