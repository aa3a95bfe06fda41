"""The two HTTP listeners: their aiohttp applications, runners and sites.

The ingest listener serves a Unix socket (its file created with the configured mode,
a stale one from a previous run of the container replaced) and loopback TCP; the API
listener serves TCP. Both answer every error as JSON and time requests per route; the
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

# aiohttp >= 3.11 keeps an idle keep-alive connection for an hour: close it after 75 s.
KEEPALIVE_TIMEOUT_S = 75.0
INGEST_SHUTDOWN_TIMEOUT_S = 1.0
API_SHUTDOWN_TIMEOUT_S = 2.0
# The request line carries the token id: up to 1024 characters, percent-encoded up to
# 12 bytes each, so the ingest listener accepts lines up to 16 KiB (aiohttp: 8190).
INGEST_MAX_LINE_BYTES = 16384


def api_application(metrics: Metrics) -> web.Application:
    """The API listener's application, routes to be added by the caller."""
    return web.Application(middlewares=[observe("api", metrics.http_duration)])


def ingest_application(metrics: Metrics, max_request_bytes: int) -> web.Application:
    """The ingest listener's application, routes to be added by the caller."""
    return web.Application(
        middlewares=[observe("ingest", metrics.http_duration)],
        client_max_size=max_request_bytes,
    )


class Listener:
    """One application served on TCP and/or a Unix socket, until closed."""

    def __init__(
        self,
        app: web.Application,
        shutdown_timeout_s: float,
        access_log: bool = True,
        max_line_bytes: int | None = None,
        decompress: bool = True,
    ) -> None:
        # Our access logger: aiohttp's would log query strings, tokens included.
        options: dict[str, Any] = (
            {"access_log_class": AccessLogger} if access_log else {"access_log": None}
        )
        if max_line_bytes is not None:
            options["max_line_size"] = max_line_bytes
        if not decompress:  # the proxy forwards bodies as they came, compressed or not
            options["auto_decompress"] = False
        self._runner = web.AppRunner(
            app,
            shutdown_timeout=shutdown_timeout_s,
            keepalive_timeout=KEEPALIVE_TIMEOUT_S,
            **options,
        )
        self._socket_path = ""

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
