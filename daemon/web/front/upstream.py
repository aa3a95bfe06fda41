"""One connection of the tee proxy to its upstream, reading one answer at a time with
httptools' response parser; `daemon.web.front.pool` opens, keeps and shares them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol, cast

import httptools

from daemon.core.model import UpstreamError
from daemon.web.front.heads import Fields

if TYPE_CHECKING:
    from daemon.web.front.pool import UpstreamPool

MAX_ANSWER_HEAD_BYTES = 65536  # the upstream's answer head; past it, 502
_NO_BODY = frozenset({204, 304})


class Receiver(Protocol):
    """The exchange an upstream connection reads an answer for."""

    def answer_head(self, status: int, reason: bytes, fields: Fields, framed: bool) -> None:
        """The answer's head; `framed`: its end is known without the connection closing."""

    def answer_body(self, data: bytes) -> None:
        """A piece of the answer's body."""

    def answer_end(self) -> None:
        """The answer is complete."""

    def upstream_failed(self, reason: UpstreamError, error: BaseException) -> None:
        """No complete answer will come."""

    def upstream_writable(self, writable: bool) -> None:
        """The connection's write buffer filled up (False) or drained (True)."""


class UpstreamConnection(asyncio.Protocol):
    """One connection to the upstream, reading the answer of one request at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.receiver: Receiver | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = False  # the request was HEAD: the answer has no body
        self.reason = b""
        self.fields: Fields = []
        self.head_bytes = 0
        self.status = 0
        self.until_close = False  # the answer's body ends when the connection closes
        self.done = False  # the answer was read to its end
        self.reusable = True  # it can carry another request (fresh, or its answer framed)
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.idle_since = 0.0

    def begin(self, receiver: Receiver, head_only: bool) -> None:
        """Read the answer to the request about to be written, for `receiver`."""
        self.receiver, self.head_only = receiver, head_only
        self.done = self.reusable = False
        self.parser = httptools.HttpResponseParser(self)
        self.status, self.until_close = 0, False

    def send(self, data: bytes) -> None:
        """Write part of the request."""
        if self.transport is not None:
            self.transport.write(data)

    def expect_answer(self) -> None:
        """The request is sent: its answer must begin, and go on, within the read timeout."""
        timeout = self.pool.upstream.read_timeout_s
        if timeout and self.timer is None and not self.done:
            self.last_read = self.loop.time()
            self.timer = self.loop.call_later(timeout, self._check_read)

    def _check_read(self) -> None:
        self.timer = None
        timeout = self.pool.upstream.read_timeout_s
        quiet = self.loop.time() - self.last_read
        if self.done or self.receiver is None:
            return
        if quiet < timeout:
            self.timer = self.loop.call_later(timeout - quiet, self._check_read)
            return
        self._fail(UpstreamError.TIMEOUT, TimeoutError("no answer within the read timeout"))

    def _fail(self, reason: UpstreamError, error: BaseException) -> None:
        receiver, self.receiver = self.receiver, None
        self.close()
        if receiver is not None:
            receiver.upstream_failed(reason, error)

    def release(self, reusable: bool) -> None:
        """The exchange is over: back to the pool when it can carry another request."""
        self.receiver = None
        self._disarm()
        self.pool.release(self, reusable and self.reusable)

    def close(self) -> None:
        """Close now; the pool forgets it once it is gone."""
        self._disarm()
        if self.transport is not None:
            self.transport.close()

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        if self.receiver is None:
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
            # A 101 too: requests go on without Upgrade, so none may switch protocols.
            if self.receiver is not None:
                self._fail(UpstreamError.INTERRUPTED, e)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.transport = None
        self.pool.lost(self)
        receiver, self.receiver = self.receiver, None
        if receiver is None:
            return
        if self.until_close and self.status and not self.done:
            self.done = True
            receiver.answer_end()
        elif self.done:
            return
        else:
            receiver.upstream_failed(
                UpstreamError.INTERRUPTED, exc or ConnectionError("the upstream closed")
            )

    def pause_writing(self) -> None:
        if self.receiver is not None:
            self.receiver.upstream_writable(False)

    def resume_writing(self) -> None:
        if self.receiver is not None:
            self.receiver.upstream_writable(True)

    # -- httptools callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        self.reason, self.fields, self.head_bytes = b"", [], 0

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > MAX_ANSWER_HEAD_BYTES:
            raise httptools.HttpParserError("the answer's head is too large")
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200 or self.receiver is None:
            return  # an interim answer (100, 103): not relayed
        self.status = status
        bodiless = self.head_only or status in _NO_BODY
        framed = bodiless or _framed(self.fields)
        self.until_close = not framed
        self.receiver.answer_head(status, self.reason, self.fields, framed)
        if self.head_only and self.receiver is not None:
            self._complete(self.parser.should_keep_alive())  # llhttp would wait for a body

    def on_body(self, body: bytes) -> None:
        if self.receiver is not None and not self.done:
            self.receiver.answer_body(body)

    def on_message_complete(self) -> None:
        if self.status and not self.done:
            self._complete(self.parser.should_keep_alive())

    def _complete(self, keep_alive: bool) -> None:
        self._disarm()
        self.done = True
        self.reusable = keep_alive and not self.until_close
        receiver = self.receiver
        if receiver is not None:
            receiver.answer_end()


def _framed(fields: Fields) -> bool:
    """True when the answer says how long its body is (a length, or chunks)."""
    for name, value in fields:
        low = name.lower()
        if low == b"content-length" or (
            low == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            return True
    return False
