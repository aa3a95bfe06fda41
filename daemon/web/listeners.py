"""The HTTP listeners: their aiohttp servers or applications, runners and sites.

The ingest listener serves a Unix socket (its file created with the configured mode,
a stale one from a previous run of the container replaced) and loopback TCP, with
aiohttp's low-level server (`daemon.web.ingestserver`); the API listener serves TCP
with an application. Both answer every error as JSON and time requests per route; the
API listener's access log (debug level) never shows a query's token.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.config import HostPort
from daemon.metrics import Metrics
from daemon.web.accesslog import AccessLogger
from daemon.web.middleware import observe
from daemon.web.protocol import JsonAppRunner

# aiohttp >= 3.11 keeps an idle keep-alive connection for an hour: close it after 75 s.
KEEPALIVE_TIMEOUT_S = 75.0
INGEST_SHUTDOWN_TIMEOUT_S = 1.0
API_SHUTDOWN_TIMEOUT_S = 2.0
# The request line carries the token id: up to 1024 characters, percent-encoded up to
# 12 bytes each, so the ingest listener accepts lines up to 16 KiB (aiohttp: 8190).
INGEST_MAX_LINE_BYTES = 16384


API_NOT_FOUND = (
    "Not Found: the events-cache API listener has no such endpoint; "
    "/openapi.json lists them, the viewer is at /ui/"
)


def api_options(header_read_timeout_s: float) -> dict[str, Any]:
    """The API listener's connection options: our access logger (aiohttp's would log
    query strings, tokens included), keep-alive closed after KEEPALIVE_TIMEOUT_S."""
    return {
        "header_read_timeout_s": header_read_timeout_s,
        "access_log_class": AccessLogger,
        "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
    }


def api_application(metrics: Metrics) -> web.Application:
    """The API listener's application, routes to be added by the caller."""
    return web.Application(middlewares=[observe("api", metrics.http_duration, API_NOT_FOUND)])


def ingest_side_options(header_read_timeout_s: float) -> dict[str, Any]:
    """The connection options of the ingest side's listeners: no access log, long
    request lines (the token id), keep-alive closed after KEEPALIVE_TIMEOUT_S, bodies
    read as they came (`daemon.core.encoding` inflates them within the body limit; the
    proxy forwards them unchanged)."""
    return {
        "header_read_timeout_s": header_read_timeout_s,
        "access_log": None,
        "max_line_size": INGEST_MAX_LINE_BYTES,
        "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
        "auto_decompress": False,
    }


class Listener:
    """One application or low-level server served on TCP and/or a Unix socket."""

    def __init__(self, runner: web.BaseRunner) -> None:
        self._runner = runner
        self._socket_path = ""

    @classmethod
    def of_app(cls, app: web.Application, shutdown_timeout_s: float, **options: Any) -> Listener:
        """An application's listener; `options` go to each connection's handler."""
        return cls(JsonAppRunner(app, shutdown_timeout=shutdown_timeout_s, **options))

    @classmethod
    def of_server(cls, server: web.Server, shutdown_timeout_s: float) -> Listener:
        """A low-level server's listener (its connection options are the server's)."""
        return cls(web.ServerRunner(server, shutdown_timeout=shutdown_timeout_s))

    async def start(
        self, tcp: HostPort | None, socket_path: str = "", socket_mode: int = 0o660
    ) -> None:
        """Listen; OSError when an address is taken or a path cannot be created."""
        await self._runner.setup()
        if socket_path:
            path = Path(socket_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_socket():
                path.unlink()  # left by a previous run of this container
            await web.UnixSite(self._runner, str(path)).start()
            self._socket_path = socket_path
            os.chmod(path, socket_mode)
        if tcp is not None:
            await web.TCPSite(self._runner, tcp.host, tcp.port).start()

    async def close(self) -> None:
        """Stop listening, finish open requests (within the shutdown timeout)."""
        await self._runner.cleanup()
        if self._socket_path:
            with contextlib.suppress(OSError):
                Path(self._socket_path).unlink()
            self._socket_path = ""
