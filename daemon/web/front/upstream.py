"""The tee proxy's connections to its upstream: opened on demand up to a limit, kept
alive between requests, each reading one answer at a time with httptools.

A request that finds no idle connection opens one while fewer than
`max_upstream_connections` are open (or being opened); beyond that it waits, in turn,
for one to come free within the connect timeout. A connection counts until it is closed
(`connection_lost`), so the upstream never sees more at once. Idle connections are
closed after UPSTREAM_KEEPALIVE_S, below the 5 s idle timeout of uvicorn and Node, so a
request never races the upstream's own close.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from daemon.core.model import UpstreamError
from daemon.web.front.heads import Fields

UPSTREAM_KEEPALIVE_S = 4.0
SWEEP_EVERY_S = 1.0
MAX_ANSWER_HEAD_BYTES = 65536  # the upstream's answer head; past it, 502
_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxy forwards to, how long it waits, and how many connections it opens."""

    url: str
    connect_timeout_s: float
    read_timeout_s: float
    max_connections: int


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


class Requester(Protocol):
    """What waits for a connection."""

    def upstream_ready(self, connection: UpstreamConnection) -> None:
        """A connection is this request's until it releases it."""

    def upstream_unavailable(self, reason: UpstreamError, error: BaseException, busy: bool) -> None:
        """No connection could be had (`busy`: every one was in use until the deadline)."""


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
        except httptools.HttpParserError as e:
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


class UpstreamPool:
    """Connections to the upstream: idle ones reused most recent first, new ones opened
    up to the limit, requests beyond it served in turn within the connect timeout."""

    def __init__(self, upstream: Upstream) -> None:
        self.loop = asyncio.get_running_loop()
        self.upstream = upstream
        parts = urlsplit(upstream.url)
        self.host = parts.hostname or ""
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.port = parts.port or (443 if self.tls else 80)
        self.authority = parts.netloc.encode()
        self.open = 0  # open or being opened
        self.idle: list[UpstreamConnection] = []
        self.waiting: deque[tuple[Requester, asyncio.TimerHandle | None]] = deque()
        self.connecting: set[asyncio.Task[None]] = set()
        self.closed = False
        self._sweeping = False

    def acquire(self, requester: Requester) -> None:
        """A connection for `requester` now (`upstream_ready`), later, or never
        (`upstream_unavailable`)."""
        now = self.loop.time()
        while self.idle:
            connection = self.idle.pop()
            fresh = now - connection.idle_since < UPSTREAM_KEEPALIVE_S
            if connection.transport is not None and fresh:
                requester.upstream_ready(connection)
                return
            connection.close()
        if self.open < self.upstream.max_connections:
            self._connect(requester)
            return
        timeout = self.upstream.connect_timeout_s
        timer = self.loop.call_later(timeout, self._gave_up, requester) if timeout else None
        self.waiting.append((requester, timer))

    def cancel(self, requester: Requester) -> None:
        """`requester` no longer wants a connection (its client went, or was too slow)."""
        for entry in self.waiting:
            if entry[0] is requester:
                self.waiting.remove(entry)
                if entry[1] is not None:
                    entry[1].cancel()
                return

    def _gave_up(self, requester: Requester) -> None:
        self.cancel(requester)
        busy = TimeoutError("no upstream connection came free in time")
        requester.upstream_unavailable(UpstreamError.TIMEOUT, busy, True)

    def _connect(self, requester: Requester) -> None:
        self.open += 1
        task = self.loop.create_task(self._open(requester))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    async def _open(self, requester: Requester) -> None:
        up = self.upstream
        try:
            async with asyncio.timeout(up.connect_timeout_s or None):
                _, connection = await self.loop.create_connection(
                    lambda: UpstreamConnection(self),
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as e:
            self.open -= 1
            requester.upstream_unavailable(
                UpstreamError.TIMEOUT if isinstance(e, TimeoutError) else UpstreamError.UNREACHABLE,
                e,
                False,
            )
            self._serve_waiting()
            return
        if self.closed:
            connection.close()
            return
        requester.upstream_ready(connection)

    def release(self, connection: UpstreamConnection, reusable: bool) -> None:
        """An exchange is done with `connection`."""
        if not reusable or connection.transport is None or self.closed:
            connection.close()  # its place frees once it is gone (lost)
            return
        if self.waiting:
            requester, timer = self.waiting.popleft()
            if timer is not None:
                timer.cancel()
            requester.upstream_ready(connection)
            return
        connection.idle_since = self.loop.time()
        self.idle.append(connection)
        if not self._sweeping:
            self._sweeping = True
            self.loop.call_later(SWEEP_EVERY_S, self._sweep)

    def lost(self, connection: UpstreamConnection) -> None:
        """`connection` is closed: its place is free."""
        self.open -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        self._serve_waiting()

    def _serve_waiting(self) -> None:
        while self.waiting and self.open < self.upstream.max_connections and not self.closed:
            requester, timer = self.waiting.popleft()
            if timer is not None:
                timer.cancel()
            self._connect(requester)

    def _sweep(self) -> None:
        """Close connections idle for UPSTREAM_KEEPALIVE_S."""
        now = self.loop.time()
        for connection in [c for c in self.idle if now - c.idle_since >= UPSTREAM_KEEPALIVE_S]:
            self.idle.remove(connection)
            connection.close()
        self._sweeping = bool(self.idle) and not self.closed
        if self._sweeping:
            self.loop.call_later(SWEEP_EVERY_S, self._sweep)

    async def close(self) -> None:
        """Close every connection (after the listener: no exchange is under way)."""
        self.closed = True
        for _, timer in self.waiting:
            if timer is not None:
                timer.cancel()
        self.waiting.clear()
        for task in list(self.connecting):
            task.cancel()
        for connection in self.idle:
            connection.close()
        self.idle.clear()
        await asyncio.sleep(0)  # let the transports close
