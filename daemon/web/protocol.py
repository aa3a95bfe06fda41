"""Every connection of the aiohttp listener (the API's): protocol-level errors as JSON,
a header read timeout.

aiohttp answers what fails before a handler runs (a request line or header over the
limits, an unknown method or Content-Encoding, bytes that are not HTTP) from
`RequestHandler.handle_error`, as text/plain, and waits for a request's headers as
long as the keep-alive timeout lets it. `JsonErrorHandler` answers those errors as
`{"message": ...}` and cuts a connection whose request head (request line and headers)
has not arrived in time: the first request's within `header_read_timeout_s` of the
connection, a later one's within that time of its first byte (between requests, the
keep-alive timeout applies). One gap remains: head bytes that arrive while the previous
request is still being handled (pipelining), followed by nothing, wait for the
keep-alive timeout.

aiohttp offers no option for either, so this subclasses its RequestHandler and reads
two private attributes of it (`_waiter`, the future that waits for the next request,
and `_request_count`, the heads parsed on the connection);
`JsonServer` builds it (`web.Server` offers no handler class option), and
`JsonAppRunner` puts a JsonServer under an application (through `AppRunner._make_server`).
pyproject.toml pins aiohttp to the minor release this was written against, and
tests/test_protocol.py fails when those internals change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from daemon.web.responses import error_response

log = structlog.get_logger(__name__)

INTERNAL = "internal error; see the sidecar's log"
ERROR_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Server": "events-cache",
}


def without_excerpt(message: str | None) -> str:
    """aiohttp's parser error without the excerpt of the request it quotes after a blank
    line (the raw head, which may hold the admin token or a client's key): the words
    only, on one line."""
    words = (message or "").split("\n\n", 1)[0]
    return " ".join(part.strip() for part in words.splitlines() if part.strip()).rstrip(":")


class JsonErrorHandler(RequestHandler):
    """aiohttp's connection handler with JSON protocol errors and a header read timeout."""

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_read_timeout_s: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._event_loop = loop
        self._head_timeout_s = header_read_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None

    def _waiting_for_request(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _start_head_clock(self) -> None:
        if self._head_timeout_s > 0:
            timeout, loop = self._head_timeout_s, self._event_loop
            self._head_timer = loop.call_later(timeout, self._head_late)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The first request's head is due within the timeout of the connection."""
        super().connection_made(transport)
        self._start_head_clock()

    def data_received(self, data: bytes) -> None:
        """Stop the clock when a request head is complete (or failed to parse: the error
        is answered); start it at the first byte of a later request's head."""
        heads = self._request_count  # aiohttp counts each head parsed, and each error
        super().data_received(data)
        if self._request_count != heads:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
        elif self._head_timer is None and data and self._waiting_for_request():
            self._start_head_clock()

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport is not None:
            log.debug("request headers not received in time; connection closed")
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The error as {"message": ...}; the connection is closed after it, as aiohttp
        does. A 500 is logged with its traceback and answered without it."""
        if request.writer.output_size > 0:  # aiohttp's own rule: the answer has begun
            raise ConnectionError("the answer has begun; cannot send an error instead")
        if status >= 500:
            log.error("request failed", status=status, exc_info=exc)
            text = INTERNAL if status == 500 else HTTPStatus(status).phrase
        else:
            log.debug("bad request", status=status, error=type(exc).__name__ if exc else None)
            text = without_excerpt(message) or HTTPStatus(status).phrase
        response = error_response(status, text)
        # Not through the application's on_response_prepare: say here what every answer
        # of these listeners says (no aiohttp/Python version in Server).
        response.headers.update(ERROR_HEADERS)
        response.force_close()
        return response


class JsonServer(web.Server):
    """A low-level server whose connections are JsonErrorHandlers."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        header_read_timeout_s: float,
        request_factory: Any = None,
        handler_cancellation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            handler,
            request_factory=request_factory,
            handler_cancellation=handler_cancellation,
            **kwargs,
        )
        self._handler_options = {"header_read_timeout_s": header_read_timeout_s, **kwargs}
        self._event_loop = asyncio.get_running_loop()

    def __call__(self) -> RequestHandler:
        return JsonErrorHandler(self, loop=self._event_loop, **self._handler_options)


class JsonAppRunner(web.AppRunner):
    """An application's runner whose server is a JsonServer."""

    def __init__(
        self, app: web.Application, *, header_read_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._timeout_s = header_read_timeout_s
        self._options = {k: v for k, v in kwargs.items() if k != "shutdown_timeout"}

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # the application started and frozen
        return JsonServer(
            server.request_handler,
            header_read_timeout_s=self._timeout_s,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **self._options,
        )
