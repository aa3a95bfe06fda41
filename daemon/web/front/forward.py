"""The tee proxy's listener: clients' requests read by httptools and forwarded as they
come (`daemon.web.front.exchange`), one at a time per connection.

Pipelined requests wait, their parser calls held, until the answer before them is out;
reading pauses meanwhile, and while the upstream or the client cannot take more. Every
request is bounded as on the ingest listener: its head within the header read timeout
and in bytes, its body within the body read timeout (then 408, the forward aborted).
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools
import structlog

from daemon.metrics.plain import RequestTimes
from daemon.web.front.exchange import Exchange
from daemon.web.front.flow import Flow
from daemon.web.front.heads import Fields
from daemon.web.front.server import KEEPALIVE_S, Listening
from daemon.web.front.wire import (
    CONTINUE,
    response_bytes,
)
from daemon.web.ingest import message
from daemon.web.proxy import Proxy

log = structlog.get_logger(__name__)


class ProxyFront(Listening):
    """The tee proxy's listener."""

    def __init__(
        self,
        proxy: Proxy,
        times: RequestTimes,
        *,
        head_timeout_s: float,
        body_timeout_s: float,
        shutdown_timeout_s: float,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        super().__init__(
            times,
            head_timeout_s=head_timeout_s,
            body_timeout_s=body_timeout_s,
            shutdown_timeout_s=shutdown_timeout_s,
            keepalive_s=keepalive_s,
        )
        self.proxy = proxy

    def _connection(self) -> ProxyConnection:
        return ProxyConnection(self)


class ProxyConnection(Flow):
    """One client's connection to the proxy."""

    def __init__(self, front: ProxyFront) -> None:
        super().__init__(front.loop, front.head_timeout_s, front.body_timeout_s, front.keepalive_s)
        self.front = front
        self.parser = httptools.HttpRequestParser(self)
        self.remote = b""
        self.fields: Fields = []
        self.exchange: Exchange | None = None
        self.keep_alive = True
        self.http11 = True
        self.served = False

    def stopping(self) -> bool:
        """The listener is closing: answers from now on close their connection."""
        return self.front.stopping

    def write(self, data: bytes) -> None:
        """Send to the client."""
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.remote = str(peer[0]).encode()
        self.front.connections.add(self)
        self.last_active = self.loop.time()
        self._clock()

    def data_received(self, data: bytes) -> None:
        while data and not self.closing:
            try:
                self.parser.feed_data(data)
                data = b""
            except httptools.HttpParserUpgrade as e:
                # A request asking to upgrade (h2c, websocket) went on as a plain one,
                # without its Upgrade header: what follows it is the next request.
                data = data[e.args[0] :]
            except httptools.HttpParserError as e:
                self.unreadable(e)
                data = b""
        self._clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.closing = True
        self.front.connections.discard(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.abort()
        self.transport = None

    def pause_writing(self) -> None:
        """The client reads slower than the upstream answers: pause the upstream too."""
        super().pause_writing()
        self._upstream_reading(False)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._upstream_reading(True)

    def _upstream_reading(self, on: bool) -> None:
        exchange = self.exchange
        upstream = exchange.upstream if exchange is not None else None
        transport = upstream.transport if upstream is not None else None
        if transport is not None:
            if on:
                transport.resume_reading()
            else:
                transport.pause_reading()

    # -- Flow -------------------------------------------------------------------------
    def waiting_for(self) -> str:
        exchange = self.exchange
        if exchange is not None:
            return "" if exchange.request_done else "body"
        return "head" if self.in_request or not self.served else "idle"

    def late(self, kind: str) -> None:
        if kind == "body" and self.exchange is not None:
            self.exchange.body_timeout()
        else:
            log.debug("request headers not received in time; connection closed")
            self.close()

    # -- httptools callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        if (self.work is not None or self.held) and self._later(self.on_message_begin):
            return
        self.in_request = True
        self.target, self.fields, self.head_bytes = b"", [], 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if (self.work is not None or self.held) and self._later(self.on_header, name, value):
            return
        self._count_header(name, value)
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        method, keep_alive = parser.get_method(), parser.should_keep_alive()
        http11 = parser.get_http_version() == "1.1"
        upgrade = parser.should_upgrade()
        held = (self.work is not None or self.held) and self._later(
            self._headers_complete, method, keep_alive, http11, upgrade
        )
        if not held:
            self._headers_complete(method, keep_alive, http11, upgrade)

    def _headers_complete(
        self, method: bytes, keep_alive: bool, http11: bool, upgrade: bool
    ) -> None:
        self.keep_alive, self.http11 = keep_alive, http11
        length: int | None = None
        chunked = expect = False
        for name, value in self.fields:
            low = name.lower()
            if low == b"content-length":
                length = int(value)  # the parser refuses a bad or a repeated one
            elif low == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif low == b"expect":
                expect = value.strip().lower() == b"100-continue"
        if upgrade and (method == b"CONNECT" or length or chunked):
            # The parser reads no body after an upgrade's head: it cannot be forwarded.
            self._unreadable("CONNECT, and protocol upgrades with a body, are not supported here")
        if expect and self.transport is not None:
            self.transport.write(CONTINUE)
        proxy = self.front.proxy
        exchange = self.exchange = Exchange(
            self, proxy, method, self.target, self.fields, length, chunked
        )
        exchange.start()

    def on_body(self, body: bytes) -> None:
        if (self.work is not None or self.held) and self._later(self.on_body, body):
            return
        if self.exchange is not None:
            self.exchange.body(body)

    def on_message_complete(self) -> None:
        if (self.work is not None or self.held) and self._later(self.on_message_complete):
            return
        exchange = self.exchange
        if exchange is None:
            return
        exchange.request_complete()
        if not exchange.over:
            self.work = exchange  # what comes next waits for its answer
            self.pause("work")

    # -- the end of an exchange ---------------------------------------------------------
    def exchange_done(self, close: bool) -> None:
        """The answer is out: close, or read the next request."""
        self.exchange = None
        if close or self.front.stopping:
            self.close()
            return
        self.in_request, self.served = False, True
        self.last_active = self.loop.time()
        self.resume("upstream")
        self.resume("upstream-write")
        if self.work is not None:
            self.work = None
            self.resume("work")
            self._replay()
        self._clock()

    def _refuse_connection(self, text: str) -> None:
        """A request that cannot be read: its forward dropped, a 400 saying why unless
        an answer has begun, then the connection closes."""
        if self.closing or self._later(self._refuse_connection, text):
            return
        log.debug("bad request", error=text)
        exchange, self.exchange = self.exchange, None
        answered = exchange is not None and exchange.answer_started
        if exchange is not None:
            exchange.abort()
        if not answered:
            self.write(response_bytes(message(400, text, close=True), True))
        self.close()
