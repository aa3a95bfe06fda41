"""What the tee proxy changes on the way through, and nothing more.

Requests: hop-by-hop headers (RFC 9110 section 7.6.1, and those the Connection header
names) are dropped, `X-Forwarded-For` gets the client's address appended, and
`X-Forwarded-Proto` and `X-Forwarded-Host` are added unless a proxy in front set them;
everything else keeps its order, case and repeats. Answers: the upstream's status,
reason and end-to-end headers, and nothing aiohttp would add of its own (no Date,
Server or Content-Type the upstream did not send).

Small bodies (a Content-Length up to WHOLE_BODY_BYTES) are read whole and written with
their head in one go, either way; larger and chunked ones stream as they come, so no
body is ever held whole beyond that bound (the tee keeps its own bounded copy).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import ClientError, ClientResponse, web
from multidict import CIMultiDict, CIMultiDictProxy

from daemon.web.tee import TeeBuffer

# RFC 9110 7.6.1, and Trailer (trailers are not relayed) and Expect (aiohttp has already
# answered 100-continue to the client).
HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"}
    | {"trailer", "expect"}
)
# Bodies up to this size (by Content-Length) are read whole and sent with the head in one
# write: the cost of streaming (a task, a write per chunk) is not worth it for them.
WHOLE_BODY_BYTES = 65536
_SERVER_DEFAULTS = ("content-type", "date", "server")
_ALWAYS_KEPT = frozenset({"host"})


def _dropped(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Hop-by-hop names, with those the Connection header lists (but Host, which is
    always forwarded as received: the upstream would get the proxy's own otherwise)."""
    values = headers.getall("Connection", ())
    listed = {name.strip().lower() for value in values for name in value.split(",")}
    return HOP_BY_HOP | (listed - _ALWAYS_KEPT)


def _kept(raw: tuple[tuple[bytes, bytes], ...], drop: frozenset[str]) -> CIMultiDict[str]:
    """Headers as they came on the wire (aiohttp's parsed ones give known names its own
    case: `ETag` would leave as `Etag`), but those in `drop`."""
    kept: CIMultiDict[str] = CIMultiDict()
    for name_bytes, value_bytes in raw:
        name = name_bytes.decode("latin-1")
        if name.lower() not in drop:
            kept.add(name, value_bytes.decode("utf-8", "surrogateescape"))
    return kept


def outgoing_headers(request: web.Request) -> CIMultiDict[str]:
    """The request's headers as the upstream gets them."""
    headers = request.headers
    out = _kept(request.raw_headers, _dropped(headers) | {"x-forwarded-for"})
    forwarded = headers.getall("X-Forwarded-For", [])
    if request.remote:
        forwarded = [*forwarded, request.remote]
    if forwarded:
        out.add("X-Forwarded-For", ", ".join(forwarded))
    if "X-Forwarded-Proto" not in headers:
        out.add("X-Forwarded-Proto", request.scheme)
    if "X-Forwarded-Host" not in headers and "Host" in headers:
        out.add("X-Forwarded-Host", headers["Host"])
    return out


def _end_to_end(upstream: ClientResponse) -> CIMultiDict[str]:
    return _kept(upstream.raw_headers, _dropped(upstream.headers))


class Relayed(web.StreamResponse):
    """The upstream's answer, streamed: its status, reason and end-to-end headers."""

    def __init__(self, upstream: ClientResponse) -> None:
        super().__init__(status=upstream.status, reason=upstream.reason)
        self.headers.extend(_end_to_end(upstream))
        self.from_upstream = frozenset(name.lower() for name in self.headers)


class RelayedWhole(web.Response):
    """The upstream's answer with its small body, written with its head in one go."""

    def __init__(self, upstream: ClientResponse, body: bytes) -> None:
        headers = _end_to_end(upstream)
        self.from_upstream = frozenset(name.lower() for name in headers)
        super().__init__(body=body, status=upstream.status, reason=upstream.reason, headers=headers)


def whole_answer(request: web.Request, upstream: ClientResponse) -> bool:
    """True when the answer's body is small and announced by its length: read it whole."""
    length = upstream.content_length
    return (
        length is not None
        and length <= WHOLE_BODY_BYTES
        and request.method != "HEAD"
        and upstream.status >= 200
        and upstream.status not in (204, 304)
    )


async def no_defaults(_: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: take back what aiohttp added to a relayed answer."""
    if isinstance(response, Relayed | RelayedWhole):
        for name in _SERVER_DEFAULTS:
            if name not in response.from_upstream:
                response.headers.popall(name, None)


class BodyTimeout(Exception):
    """The client's body was not complete at its deadline: the forward is aborted."""


class Upload:
    """The request body on its way to the upstream, copied into the tee's buffer.

    A body of at most WHOLE_BODY_BYTES (by its Content-Length) is read whole and sent
    with the request's head in one write; a larger or chunked one streams on as it comes.
    Every read is cut at `deadline` (loop time; None: no limit), so a trickled body holds
    neither the client's connection nor an upstream one past it, however it trickles.
    """

    __slots__ = ("buffer", "content", "deadline", "failed", "length", "timed_out")

    def __init__(
        self, request: web.Request, buffer: TeeBuffer | None, deadline: float | None
    ) -> None:
        self.content = request.content
        self.length = request.content_length
        self.buffer = buffer
        self.deadline = deadline
        self.failed = False  # the client's body broke off, or was cut
        self.timed_out = False  # cut at the deadline

    async def data(self) -> bytes | AsyncIterator[bytes]:
        """The body whole when small, else a stream of its chunks."""
        if self.length is None or self.length > WHOLE_BODY_BYTES:
            return self._chunks()
        try:
            body = await self._within(self.content.readexactly(self.length))
        except (asyncio.IncompleteReadError, OSError, ClientError, BodyTimeout):
            self.failed = True
            raise
        if self.buffer is not None:
            self.buffer.add(body)
            self.buffer.complete = True
        return body

    async def _chunks(self) -> AsyncIterator[bytes]:
        buffer = self.buffer
        try:
            while chunk := await self._within(self.content.readany()):
                if buffer is not None:
                    buffer.add(chunk)
                yield chunk
        except Exception:
            self.failed = True
            raise
        if buffer is not None:
            buffer.complete = True

    async def _within(self, read: Coroutine[Any, Any, bytes]) -> bytes:
        """`read`, cut at the deadline (BodyTimeout) unless the whole body is here."""
        if self.deadline is None or self.content.is_eof():
            return await read
        try:
            async with asyncio.timeout_at(self.deadline):
                return await read
        except TimeoutError:
            self.timed_out = True
            raise BodyTimeout from None
