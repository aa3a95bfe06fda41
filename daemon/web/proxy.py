"""The tee proxy: in front of the ingest container, every request forwarded unchanged.

Method, path and query (as received, not re-encoded), headers (order, case and repeats
kept; hop-by-hop ones per RFC 9110 section 7.6.1 dropped; `X-Forwarded-For` appended to,
`X-Forwarded-Proto` and `X-Forwarded-Host` added unless a proxy in front set them) and
the body, streamed as it arrives. The upstream's answer comes back the same way: status,
reason, headers and body, streamed, bytes untouched (no decompression either way).
502 `{"message"}` when the upstream cannot be reached, 504 when it does not answer in
time; once an answer has begun, a failure cuts the client's connection so that the
client sees a broken answer, never a complete-looking one.

The body is copied into a bounded buffer as it streams through (`daemon.web.tee`) and
cached after the answer was relayed, when the upstream answered 2xx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from aiohttp import (
    ClientError,
    ClientResponse,
    ClientSession,
    ClientTimeout,
    DummyCookieJar,
    StreamReader,
    TCPConnector,
    web,
)
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from daemon.core.model import TeeOutcome, UpstreamError
from daemon.core.wire import ANY_PATH
from daemon.metrics import Metrics
from daemon.web.middleware import observe
from daemon.web.responses import error_response
from daemon.web.tee import Tee, TeeBuffer

# RFC 9110 7.6.1, and Trailer (trailers are not relayed) and Expect (aiohttp has already
# answered 100-continue to the client).
HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"}
    | {"trailer", "expect"}
)
# Pooled upstream connections idle longer than this are closed: below the 5 s idle
# timeout of uvicorn and Node, so a request never races the upstream's close.
UPSTREAM_KEEPALIVE_S = 4.0
WARN_EVERY_S = 10.0
# What aiohttp adds to a request or an answer when it is absent: never added here.
_CLIENT_DEFAULTS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_SERVER_DEFAULTS = ("content-type", "date", "server")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxy forwards to, and how long it waits."""

    url: str
    connect_timeout_s: float
    read_timeout_s: float


def _dropped(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Hop-by-hop names, with those the Connection header lists."""
    values = headers.getall("Connection", ())
    return HOP_BY_HOP | {name.strip().lower() for value in values for name in value.split(",")}


def outgoing_headers(request: web.Request) -> CIMultiDict[str]:
    """The request's headers as the upstream gets them."""
    headers = request.headers
    drop = _dropped(headers) | {"x-forwarded-for"}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in drop:
            out.add(name, value)
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


class Relayed(web.StreamResponse):
    """The upstream's answer: its status, reason and end-to-end headers."""

    def __init__(self, upstream: ClientResponse) -> None:
        super().__init__(status=upstream.status, reason=upstream.reason)
        headers = upstream.headers
        drop = _dropped(headers)
        for name, value in headers.items():
            if name.lower() not in drop:
                self.headers.add(name, value)
        self.from_upstream = frozenset(name.lower() for name in self.headers)


async def _no_defaults(_: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: take back what aiohttp added to a relayed answer."""
    if isinstance(response, Relayed):
        for name in _SERVER_DEFAULTS:
            if name not in response.from_upstream:
                response.headers.popall(name, None)


class _Upload:
    """The request body as it streams to the upstream, copied into the tee's buffer."""

    __slots__ = ("buffer", "content", "failed")

    def __init__(self, content: StreamReader, buffer: TeeBuffer | None) -> None:
        self.content = content
        self.buffer = buffer
        self.failed = False  # the client's body broke off

    async def chunks(self) -> AsyncIterator[bytes]:
        buffer = self.buffer
        try:
            async for chunk in self.content.iter_any():
                if buffer is not None:
                    buffer.add(chunk)
                yield chunk
        except Exception:
            self.failed = True
            raise
        if buffer is not None:
            buffer.complete = True


class Proxy:
    """Forwards requests to the upstream and tees their bodies; owns the client session."""

    def __init__(self, upstream: Upstream, tee: Tee, metrics: Metrics) -> None:
        self.upstream = upstream
        self.tee = tee
        self._base = upstream.url.rstrip("/")
        self._errors = metrics.proxy_upstream_errors
        self._session: ClientSession | None = None
        self._warned: dict[UpstreamError, float] = {}

    async def start(self) -> None:
        """Open the connection pool (on the running loop)."""
        up = self.upstream
        self._session = ClientSession(
            connector=TCPConnector(limit=0, keepalive_timeout=UPSTREAM_KEEPALIVE_S),
            timeout=ClientTimeout(
                total=None,
                connect=up.connect_timeout_s or None,
                sock_read=up.read_timeout_s or None,
            ),
            auto_decompress=False,
            cookie_jar=DummyCookieJar(),
            skip_auto_headers=_CLIENT_DEFAULTS,
        )

    async def close(self) -> None:
        """Close the pool (after the listener: in-flight forwards are done)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Forward one request, relay the answer, then tee the body."""
        assert self._session is not None
        headers = request.headers
        buffer = self.tee.buffer_for(request.body_exists, request.path, request.query, headers)
        upload = _Upload(request.content, buffer) if request.body_exists else None
        try:
            upstream = await self._session.request(
                request.method,
                URL(self._base + _target(request), encoded=True),
                headers=outgoing_headers(request),
                data=upload.chunks() if upload is not None else None,
                allow_redirects=False,
            )
        except (TimeoutError, ClientError, OSError) as e:
            if buffer is not None:
                self.tee.count(TeeOutcome.INCOMPLETE)
            if upload is not None and upload.failed:
                return error_response(400, "the request body broke off")  # nobody listens
            return self._unanswered(e)
        async with upstream:
            response, relayed = await self._relay(request, upstream)
        if buffer is not None:
            if not relayed:
                self.tee.count(TeeOutcome.INCOMPLETE)
            elif not 200 <= upstream.status < 300:
                self.tee.count(TeeOutcome.UPSTREAM_STATUS)
            else:  # after this handler, so that nothing of it delays the answer
                args = (buffer, request.path, request.query, headers)
                asyncio.get_running_loop().call_soon(self.tee.cache, *args)
        return response

    async def _relay(
        self, request: web.Request, upstream: ClientResponse
    ) -> tuple[web.StreamResponse, bool]:
        """Stream the answer to the client; (the response, True when it went whole)."""
        response = Relayed(upstream)
        try:
            await response.prepare(request)
        except ConnectionError:
            return response, False  # the client went away
        reader = upstream.content
        while True:
            try:
                chunk = await reader.readany()
            except (TimeoutError, ClientError, OSError) as e:
                timeout = isinstance(e, TimeoutError)
                self._failed(UpstreamError.TIMEOUT if timeout else UpstreamError.INTERRUPTED, e)
                if request.transport is not None:
                    request.transport.close()  # the client must see a broken answer
                return response, False
            if not chunk:
                break
            try:
                await response.write(chunk)
            except ConnectionError:
                return response, False  # the client went away
        try:
            await response.write_eof()
        except ConnectionError:
            return response, False
        return response, True

    def _unanswered(self, error: BaseException) -> web.Response:
        if isinstance(error, TimeoutError):
            self._failed(UpstreamError.TIMEOUT, error)
            return error_response(504, "the upstream (the ingest container) did not answer in time")
        self._failed(UpstreamError.UNREACHABLE, error)
        return error_response(502, "the upstream (the ingest container) did not answer")

    def _failed(self, reason: UpstreamError, error: BaseException) -> None:
        """Count a failed forward; warn at most every WARN_EVERY_S per reason."""
        self._errors[reason].inc()
        now = time.monotonic()
        if now - self._warned.get(reason, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[reason] = now
            log.warning(
                "proxy upstream failed", reason=reason, upstream=self._base, error=repr(error)
            )


def _target(request: web.Request) -> str:
    """Path and query exactly as the client sent them (origin form)."""
    raw = request.raw_path
    return raw if raw.startswith("/") else request.rel_url.raw_path_qs


PROXY = web.AppKey("proxy", Proxy)


async def forward(request: web.Request) -> web.StreamResponse:
    """Any method, any path: forwarded to the upstream."""
    return await request.app[PROXY].forward(request)


def proxy_application(metrics: Metrics, proxy: Proxy) -> web.Application:
    """The proxy listener's application: one route for every method and path."""
    app = web.Application(middlewares=[observe("proxy", metrics.http_duration)])
    app[PROXY] = proxy
    app.on_response_prepare.append(_no_defaults)
    app.router.add_route("*", ANY_PATH, forward)
    return app
