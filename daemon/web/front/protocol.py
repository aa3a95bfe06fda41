"""One connection of an ingest-side listener: HTTP/1.1 read by httptools, answered here.

The ingest path is pod-private and speaks a small part of HTTP/1.1 (keep-alive,
pipelining, Content-Length and chunked bodies, `Expect: 100-continue`), so it needs no
web framework: the parser's callbacks gather a request, and once its body is complete
the route answers it in the same callback (no task per request). A large body is parsed
in a step of its own, and a request of many events admitted in slices: these steps run
in the turns of the listeners' shared Pacer (no task), the loop free between them; what
the parser reports of pipelined requests meanwhile is held and replayed after, so
answers always leave in the order the requests came. Every request is
bounded: its head within the header read timeout and in bytes, its body within the body
read timeout and max_request_bytes. Reading pauses while the transport's write buffer is
full or the listeners' in-flight byte budget is spent.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, cast

import httptools
import structlog

from daemon.web.front.flow import Flow
from daemon.web.front.routes import INLINE_BODY_BYTES, INTERNAL_ERROR, Head, in_steps
from daemon.web.front.wire import (
    CONTINUE,
    MAX_DISCARD_BYTES,
    content_length,
    response_bytes,
)
from daemon.web.ingest import Answer, Work, message

if TYPE_CHECKING:
    from daemon.web.front.server import Front

log = structlog.get_logger(__name__)

_CONTENT_LENGTH, _EXPECT = b"content-length", b"expect"
_TRANSFER_ENCODING = b"transfer-encoding"


class HttpConnection(Flow):
    """Reads requests off one connection and writes their answers, in order."""

    def __init__(self, front: Front) -> None:
        super().__init__(front.loop, front.head_timeout_s, front.body_timeout_s, front.keepalive_s)
        self.front = front
        self.parser = httptools.HttpRequestParser(self)
        self.headers: dict[bytes, bytes] = {}
        self.chunks: list[bytes] = []
        self.body_bytes = 0
        self.head: Head | None = None  # the request under way, once its head is read
        self.started = 0.0
        self.close_after = False  # the answer written said Connection: close
        self.keep_alive = True  # of the request under way, as its head said
        self.work: Work | None = None
        self.feeding = False  # within a read being parsed
        self.served = False  # a request was answered on this connection

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.front.connections.add(self)
        self.last_active = self.loop.time()
        self._clock()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.feeding = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse_connection("protocol upgrades are not supported here")
        except httptools.HttpParserError as e:
            self.unreadable(e)
        finally:
            self.feeding = False
        self._clock()

    def waiting_for(self) -> str:
        """What the connection waits for now, for its clock: a request's head, its body,
        the next request ("idle"), or nothing it should time ("")."""
        if self.work is not None or "budget" in self.paused_by:
            return ""  # bounded by the work itself, or by the bodies ahead of it
        if self.head is not None:
            return "body"
        # The first request's head is due from the connection, a later one's from its
        # first byte; between requests the keep-alive timeout applies.
        return "head" if self.in_request or not self.served else "idle"

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.closing = True
        self.front.connections.discard(self)
        self.front.budget.release(self)
        self.transport = None

    # -- httptools callbacks ----------------------------------------------------------
    def on_message_begin(self) -> None:
        if (self.work is not None or self.held) and self._later(self.on_message_begin):
            return
        self.in_request = True
        self.target, self.headers, self.head_bytes = b"", {}, 0
        self.chunks, self.body_bytes, self.head, self.close_after = [], 0, None, False

    def on_header(self, name: bytes, value: bytes) -> None:
        if (self.work is not None or self.held) and self._later(self.on_header, name, value):
            return
        self._count_header(name, value)
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        parser = self.parser
        method, keep_alive = parser.get_method().decode("latin-1"), parser.should_keep_alive()
        held = (self.work is not None or self.held) and self._later(
            self._headers_complete, method, keep_alive
        )
        if not held:
            self._headers_complete(method, keep_alive)

    def _headers_complete(self, method: str, keep_alive: bool) -> None:
        self.started = time.perf_counter()
        self.keep_alive = keep_alive
        front, headers = self.front, self.headers
        length = content_length(headers.get(_CONTENT_LENGTH))
        head = self.head = front.route.head(method, self.target, headers, length)
        if head.refusal is not None:
            # Answered now; the body is still read (and let go) so that a client that
            # sends it whole before reading gets the answer, unless it is too large.
            self._write(head.refusal)
            if length is not None and length > MAX_DISCARD_BYTES:
                self.close()
            return
        if _TRANSFER_ENCODING in headers and b"chunked" in headers[_TRANSFER_ENCODING].lower():
            size = front.max_body_bytes
        else:
            size = min(length or 0, front.max_body_bytes)
        if size and not front.budget.reserve(self, size):
            self.pause("budget")  # until granted(): no body is read meanwhile
            return
        if _EXPECT in headers or not self.feeding:
            self.granted()  # else nothing to do: reading goes on, the read's clock is set

    def granted(self) -> None:
        """The body may be read: room for it in the byte budget."""
        self.resume("budget")
        if self.head is None or self.closing:
            return
        if self.headers.get(_EXPECT, b"").lower() == b"100-continue" and self.transport:
            self.transport.write(CONTINUE)
        if not self.feeding:  # granted after a wait, outside a read: its clock starts now
            self._clock()

    def on_body(self, body: bytes) -> None:
        if (self.work is not None or self.held) and self._later(self.on_body, body):
            return
        head = self.head
        if self.closing or head is None:
            return
        self.body_bytes += len(body)
        if head.refusal is not None:
            if self.body_bytes > MAX_DISCARD_BYTES:
                self.close()
            return
        if self.body_bytes > self.front.max_body_bytes:
            head.refusal = self.front.route.too_large()
            self.chunks = []
            self.front.budget.release(self)
            self._write(head.refusal)
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        head = self.head
        if (self.work is not None or self.held) and self._later(self.on_message_complete):
            return
        if self.closing or head is None:
            return
        if head.refusal is not None:
            self._over()
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        if len(body) > INLINE_BODY_BYTES:
            result: Answer | Work = in_steps(self.front.route, head, self.headers, body)
        else:
            try:
                result = self.front.route.answer(head, self.headers, body)
            except Exception:
                log.exception("request failed", method=head.method)
                result = INTERNAL_ERROR
        if isinstance(result, Answer):
            self._write(result)
            self._over()
        else:  # worked out in steps, in the pacer's turns
            self.work = result
            self.pause("work")
            self.front.pacer.add(self._step)

    def _step(self) -> None:
        """One slice of the answer being worked out; the answer once it is done."""
        work = self.work
        if work is None or self.closing:
            self.work = None
            return
        try:
            next(work)
        except StopIteration as done:
            result = done.value
        except Exception:
            log.exception("request failed", method=self.head.method if self.head else "")
            result = INTERNAL_ERROR
        else:
            self.front.pacer.add(self._step)
            return
        self.work = None
        self._write(result)
        self._over()
        self.resume("work")
        self._replay()
        self._clock()

    def _over(self) -> None:
        """The request is answered and read to its end."""
        self.front.budget.release(self)
        self.resume("budget")  # it may have come whole while waiting for room
        if self.close_after:
            self.close()
        else:
            self._next()

    # -- answering, timers, flow control ----------------------------------------------
    def _write(self, result: Answer) -> None:
        """Write the answer; the connection closes after the request if asked to."""
        transport = self.transport
        if transport is None or self.closing:
            return
        close = result.close or not self.keep_alive or self.front.stopping
        self.close_after = close
        transport.write(response_bytes(result, close))
        if self.head is not None:
            self.front.observe(self.head, result.status, self.started)

    def _next(self) -> None:
        """The request is over: wait for the next one on this connection."""
        self.in_request, self.head, self.body_bytes, self.served = False, None, 0, True
        self.last_active = self.loop.time()

    def late(self, kind: str) -> None:
        """A head or a body did not come in time: the connection closes (after a 408 for a
        body, unless its request was answered already)."""
        if kind == "head":
            log.debug("request headers not received in time; connection closed")
        elif self.work is None and (self.head is None or self.head.refusal is None):
            self._write(self.front.route.body_timeout())
        self.close()  # an answer already written is still sent

    def _refuse_connection(self, text: str) -> None:
        """A request the parser cannot read: a 400 saying why, then the connection closes
        (nothing after it can be framed)."""
        if self.closing or self._later(self._refuse_connection, text):
            return
        log.debug("bad request", error=text)
        self.head = None
        self._write(message(400, text, close=True))
        self.close()
