"""One request through the tee proxy: forwarded to the upstream as it arrives, its answer
relayed as it comes, its body's copy cached once the answer went out whole.

A body of at most WHOLE_BODY_BYTES (by its Content-Length) is read whole before an
upstream connection is taken and sent with the request's head in one write; a larger or
chunked one streams on as it comes (held, up to MAX_PENDING_BYTES, while a connection is
being had). Answers likewise: a small one by its length is read whole and written with
its head in one go (so a small answer that breaks off is still a clean 502); any other
streams. No task: the client's and the upstream's protocol callbacks drive it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from daemon.core.model import TeeOutcome, UpstreamError
from daemon.core.tokenfrom import split_target
from daemon.core.wire import KNOWN_METHODS
from daemon.web.front.heads import (
    LAST_CHUNK,
    Fields,
    FieldView,
    answer_head,
    chunk,
    origin_form,
    request_head,
)
from daemon.web.front.upstream import UpstreamConnection
from daemon.web.front.wire import response_bytes
from daemon.web.ingest import Answer

if TYPE_CHECKING:
    from daemon.web.front.forward import ProxyConnection
    from daemon.web.proxy import Proxy

WHOLE_BODY_BYTES = 65536
MAX_PENDING_BYTES = 256 * 1024
_NO_BODY = frozenset({204, 304})
ROUTE_LABEL = "/{tail}"


class Exchange:
    """A request and its answer, between the client's connection and an upstream one."""

    __slots__ = (
        "answer_fields",
        "answer_parts",
        "answer_started",
        "buffer",
        "chunked",
        "chunked_out",
        "client",
        "close_out",
        "head",
        "method",
        "over",
        "path",
        "pending",
        "pending_bytes",
        "proxy",
        "query",
        "reason",
        "request_done",
        "sent_all",
        "started",
        "status",
        "streamed",
        "upstream",
        "view",
        "whole",
    )

    def __init__(
        self,
        client: ProxyConnection,
        proxy: Proxy,
        method: bytes,
        target: bytes,
        fields: Fields,
        length: int | None,
        chunked: bool,
    ) -> None:
        self.client, self.proxy, self.method = client, proxy, method
        self.started = time.perf_counter()
        self.chunked = chunked
        target = origin_form(target)
        self.head, kept = request_head(
            method, target, fields, client.remote, proxy.pool.authority, chunked
        )
        self.streamed = chunked or (length or 0) > WHOLE_BODY_BYTES
        self.whole = not self.streamed and bool(length)
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.request_done = self.sent_all = self.over = self.answer_started = False
        self.upstream: UpstreamConnection | None = None
        self.status, self.reason = 0, b""
        self.answer_fields: Fields = []
        self.answer_parts: list[bytes] | None = None  # a small answer, read whole
        self.chunked_out = self.close_out = False
        self.path, self.query = split_target(target)
        self.view = FieldView(kept)
        declared = None if chunked else (length or 0)
        self.buffer = proxy.tee.buffer_for(declared, self.path, self.query, self.view)

    def start(self) -> None:
        """The head is read: take a connection now unless the body is to be read whole."""
        if not self.whole:
            self.proxy.pool.acquire(self)

    # -- the client's request ----------------------------------------------------------
    def body(self, data: bytes) -> None:
        """A piece of the request's body."""
        if self.buffer is not None:
            self.buffer.add(data)
        upstream = self.upstream
        if upstream is None:
            self.pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > MAX_PENDING_BYTES and self.streamed:
                self.client.pause("upstream")
        else:
            upstream.send(chunk(data) if self.chunked else data)

    def request_complete(self) -> None:
        """The request's body is read to its end."""
        self.request_done = True
        if self.buffer is not None:
            self.buffer.complete = True
        upstream = self.upstream
        if self.whole:
            self.proxy.pool.acquire(self)
        elif upstream is not None:
            if self.chunked:
                upstream.send(LAST_CHUNK)
            self.sent_all = True
            upstream.expect_answer()

    # -- the upstream connection (Requester) -------------------------------------------
    def upstream_ready(self, connection: UpstreamConnection) -> None:
        """Send what there is of the request: the head and the body read so far."""
        if self.over:
            connection.release(True)  # not used: as good as new
            return
        self.upstream = connection
        connection.begin(self, self.method == b"HEAD")
        parts = [self.head]
        if self.pending:
            parts += [chunk(p) for p in self.pending] if self.chunked else self.pending
            self.pending, self.pending_bytes = [], 0
        if self.request_done and self.chunked:
            parts.append(LAST_CHUNK)
        connection.send(b"".join(parts) if len(parts) > 1 else parts[0])
        self.client.resume("upstream")
        if self.request_done:
            self.sent_all = True
            connection.expect_answer()

    def upstream_unavailable(self, reason: UpstreamError, error: BaseException, busy: bool) -> None:
        """No connection: 502 or 504, the copy not cached."""
        if not self.over:
            self.proxy.failed(reason, error)
            self._refuse(self.proxy.unanswered(reason, busy))

    # -- the upstream's answer (Receiver) ----------------------------------------------
    def answer_head(self, status: int, reason: bytes, fields: Fields, framed: bool) -> None:
        """The answer's head: held with a small body, else sent on now."""
        self.status = status
        client = self.client
        has_body = self.method != b"HEAD" and status not in _NO_BODY
        length = _length(fields) if has_body else None
        self.close_out = not client.keep_alive or client.stopping()
        if length is not None and length <= WHOLE_BODY_BYTES:
            self.reason, self.answer_fields, self.answer_parts = reason, fields, []
            return
        if has_body and length is None:  # chunks, or until the upstream closes
            self.chunked_out = client.http11
            self.close_out = self.close_out or not client.http11
        self.answer_started = True
        client.write(answer_head(status, reason, fields, self.chunked_out, self.close_out))

    def answer_body(self, data: bytes) -> None:
        """A piece of the answer's body: kept with a small answer, else sent on."""
        if self.answer_parts is not None:
            self.answer_parts.append(data)
        elif data:
            self.client.write(chunk(data) if self.chunked_out else data)

    def answer_end(self) -> None:
        """The answer is whole: write what is held, then the exchange is over."""
        parts = self.answer_parts
        if parts is not None:
            head = answer_head(self.status, self.reason, self.answer_fields, False, self.close_out)
            self.client.write(head + b"".join(parts) if parts else head)
        elif self.chunked_out:
            self.client.write(LAST_CHUNK)
        self._finish(True, self.status)

    def upstream_failed(self, reason: UpstreamError, error: BaseException) -> None:
        """The answer will not come whole: a 502/504 if nothing was sent, else the client's
        connection cut (it must see a broken answer, never a complete-looking one)."""
        if self.over:
            return
        self.upstream = None  # closed already
        self.proxy.failed(reason, error)
        if self.answer_started:
            self._finish(False, self.status)
            self.client.close()
        else:
            self._refuse(self.proxy.unanswered(reason, False))

    def upstream_writable(self, writable: bool) -> None:
        """Read the client's body only while the upstream takes it."""
        if writable:
            self.client.resume("upstream-write")
        else:
            self.client.pause("upstream-write")

    # -- the end ------------------------------------------------------------------------
    def body_timeout(self) -> None:
        """The client's body did not come in time: 408, the forward aborted."""
        if self.over:
            return
        refusal = self.proxy.tee.intake.body_timeout()
        if self.answer_started:
            self._abort()
            self.client.close()
            return
        self._refuse(Answer(refusal.status, refusal.body, close=True, headers=refusal.headers))

    def abort(self) -> None:
        """The client's side broke (gone, or unreadable): drop the forward, nothing cached."""
        if not self.over:
            self._abort()

    def _abort(self) -> None:
        self.over = True
        if self.upstream is not None:
            self.upstream.release(False)  # closed: it may be half-way through the request
            self.upstream = None
        else:
            self.proxy.pool.cancel(self)
        if self.buffer is not None:
            self.proxy.tee.let_go(self.buffer)
            self.proxy.tee.count(TeeOutcome.INCOMPLETE)

    def _refuse(self, answer: Answer) -> None:
        """Answer here, not the upstream: the forward is over, nothing cached."""
        close = answer.close or not self.request_done or not self.client.keep_alive
        self.client.write(response_bytes(answer, close or self.client.stopping()))
        self.close_out = close
        self._finish(False, answer.status)

    def _finish(self, relayed: bool, status: int) -> None:
        """The answer is out (whole, or not): count it, free the upstream connection,
        cache the copy when the upstream took the request, then the next request."""
        self.over = True
        method = self.method.decode("latin-1")
        method = method if method in KNOWN_METHODS else "other"
        self.proxy.times.observe(ROUTE_LABEL, method, status, time.perf_counter() - self.started)
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            upstream.release(relayed and self.sent_all)
        elif not relayed:
            self.proxy.pool.cancel(self)
        close = self.close_out or not self.request_done
        if not self._tee(relayed, close):
            self.client.exchange_done(close)

    def _tee(self, relayed: bool, close: bool) -> bool:
        """Count or cache the copy; True when the client's next request waits for it."""
        buffer, tee = self.buffer, self.proxy.tee
        if buffer is None:
            return False
        if not relayed or not self.request_done:
            tee.let_go(buffer)
            tee.count(TeeOutcome.INCOMPLETE)
        elif not 200 <= self.status < 300:
            tee.let_go(buffer)
            tee.count(TeeOutcome.UPSTREAM_STATUS)
        else:  # the answer is written: its cost no longer delays it
            tee.cache(
                buffer, self.path, self.query, self.view, lambda: self.client.exchange_done(close)
            )
            return True
        return False


def _length(fields: Fields) -> int | None:
    """The answer's Content-Length (the parser has checked it), or None."""
    for name, value in fields:
        if len(name) == 14 and name.lower() == b"content-length":
            return int(value)
    return None
