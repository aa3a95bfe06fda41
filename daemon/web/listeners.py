"""The aiohttp listener: the API listener, an application on TCP.

It answers every error as JSON and times requests per route; its access log (debug
level) never shows a query's token. The ingest side's listeners (ingest, mirror, tee
proxy) are not aiohttp's: `daemon.web.front` serves them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon.config import HostPort
from daemon.core.wire import MAX_TARGET_BYTES
from daemon.metrics import Metrics
from daemon.web.accesslog import AccessLogger
from daemon.web.middleware import observe
from daemon.web.protocol import JsonAppRunner

# aiohttp >= 3.11 keeps an idle keep-alive connection for an hour: close it after 75 s.
KEEPALIVE_TIMEOUT_S = 75.0
INGEST_SHUTDOWN_TIMEOUT_S = 1.0
API_SHUTDOWN_TIMEOUT_S = 2.0


API_NOT_FOUND = (
    "Not Found: the events-cache API listener has no such endpoint; "
    "/openapi.json lists them, the viewer is at /ui/"
)


def api_options(header_read_timeout_s: float) -> dict[str, Any]:
    """The API listener's connection options: our access logger (aiohttp's would log
    query strings, tokens included), keep-alive closed after KEEPALIVE_TIMEOUT_S, and
    request bodies never inflated: no route reads one, and aiohttp would otherwise decode
    a `Content-Encoding: gzip` body it then lets go, logging a body that is not gzip as
    an unhandled exception (at error level, the body in its traceback's locals)."""
    return {
        "header_read_timeout_s": header_read_timeout_s,
        "access_log_class": AccessLogger,
        "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
        "auto_decompress": False,
        # As long a request line as the ingest takes: any id it stores can be asked for.
        "max_line_size": MAX_TARGET_BYTES,
    }


def api_application(metrics: Metrics) -> web.Application:
    """The API listener's application, routes to be added by the caller; every answer
    with the API's headers (`api_headers`)."""
    app = web.Application(middlewares=[observe("api", metrics.http_duration, API_NOT_FOUND)])
    app.on_response_prepare.append(api_headers)
    return app


async def api_headers(_: web.Request, response: web.StreamResponse) -> None:
    """What every API answer says: not to be stored by any cache (answers hold events;
    the viewer's files keep their own `no-cache`, revalidated by ETag), not to be sniffed
    as another type than it says, and no server software or version (aiohttp would name
    itself and Python's version)."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Server"] = "events-cache"


class Listener:
    """One application served on TCP."""

    def __init__(self, runner: web.BaseRunner) -> None:
        self._runner = runner

    @classmethod
    def of_app(cls, app: web.Application, shutdown_timeout_s: float, **options: Any) -> Listener:
        """An application's listener; `options` go to each connection's handler."""
        return cls(JsonAppRunner(app, shutdown_timeout=shutdown_timeout_s, **options))

    async def start(self, tcp: HostPort | None) -> None:
        """Listen; OSError when the address is taken."""
        await self._runner.setup()
        if tcp is not None:
            await web.TCPSite(self._runner, tcp.host, tcp.port).start()

    async def close(self) -> None:
        """Stop listening, finish open requests (within the shutdown timeout)."""
        await self._runner.cleanup()
