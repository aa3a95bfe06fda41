"""The tee proxy: in front of the ingest container, every request forwarded unchanged.

Method, path and query (as received, not re-encoded), headers (order, case and repeats
kept; hop-by-hop ones per RFC 9110 section 7.6.1 dropped; `X-Forwarded-For` appended to,
`X-Forwarded-Proto` and `X-Forwarded-Host` added unless a proxy in front set them) and
the body, streamed as it arrives (`daemon.web.relay`). The upstream's answer comes back
the same way: status, reason, headers and body, bytes untouched (no decompression either
way). 502 `{"message"}` when the upstream cannot be reached or its small answer breaks
off, 504 when it does not answer in time; once a streamed answer has begun, a failure
cuts the client's connection so that the client sees a broken answer, never a
complete-looking one.

Bounded: at most `max_upstream_connections` open to the upstream (a request beyond them
waits for one within the connect timeout, then 504), and a body not complete
`body_read_timeout_seconds` after its headers is cut (408, the connection closed, the
forward aborted and its upstream connection closed), so slow clients cannot pin the
upstream's connections.

The body is copied into a bounded buffer as it streams through (`daemon.web.tee`) and
cached after the answer was relayed, when the upstream answered 2xx.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
from aiohttp import (
    ClientError,
    ClientResponse,
    ClientSession,
    ClientTimeout,
    DummyCookieJar,
    TCPConnector,
    web,
)
from yarl import URL

from daemon.core.model import TeeOutcome, UpstreamError
from daemon.core.tokenfrom import split_target
from daemon.core.wire import ANY_PATH, JSON
from daemon.metrics import Metrics
from daemon.web.middleware import observe
from daemon.web.relay import (
    BodyTimeout,
    Relayed,
    RelayedWhole,
    Upload,
    no_defaults,
    outgoing_headers,
    whole_answer,
)
from daemon.web.responses import error_response
from daemon.web.tee import Tee

# Pooled upstream connections idle longer than this are closed: below the 5 s idle
# timeout of uvicorn and Node, so a request never races the upstream's close.
UPSTREAM_KEEPALIVE_S = 4.0
WARN_EVERY_S = 10.0
# What aiohttp adds to a request when it is absent: never added here.
_CLIENT_DEFAULTS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxy forwards to, how long it waits, and how many connections it opens."""

    url: str
    connect_timeout_s: float
    read_timeout_s: float
    max_connections: int


class Proxy:
    """Forwards requests to the upstream and tees their bodies; owns the client session."""

    def __init__(self, upstream: Upstream, tee: Tee, metrics: Metrics) -> None:
        self.upstream = upstream
        self.tee = tee
        self._base = upstream.url.rstrip("/")
        self._errors = metrics.proxy_upstream_errors
        self._session: ClientSession | None = None
        self._warned: dict[UpstreamError, float] = {}
        self._forwarding = 0  # forwards under way: past max_connections, some wait

    async def start(self) -> None:
        """Open the connection pool (on the running loop)."""
        up = self.upstream
        self._session = ClientSession(
            connector=TCPConnector(
                limit=up.max_connections, keepalive_timeout=UPSTREAM_KEEPALIVE_S
            ),
            timeout=ClientTimeout(  # connect: also the wait for a free connection
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
        self._forwarding += 1
        try:
            return await self._forward(request)
        finally:
            self._forwarding -= 1

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        # The tee reads the key from what the upstream gets, as the upstream reads it: a
        # header the client listed in Connection is neither forwarded nor read, and the
        # query is what follows the target's first "?" (a "#" before it included).
        headers = outgoing_headers(request)
        target = _target(request)
        path, query = split_target(target.encode("utf-8", "surrogateescape"))
        length = request.content_length if request.body_exists else 0
        buffer = self.tee.buffer_for(length, path, query, headers)
        upload = Upload(request, buffer, self._deadline()) if request.body_exists else None
        try:
            upstream = await self._session.request(
                request.method,
                # A "#" is not allowed in a request target; as sent, aiohttp would take
                # it for a fragment and drop it and the query after it: sent as %23.
                URL(self._base + target.replace("#", "%23"), encoded=True),
                headers=headers,
                data=await upload.data() if upload is not None else None,
                allow_redirects=False,
            )
        except (
            TimeoutError,
            ClientError,
            OSError,
            asyncio.IncompleteReadError,
            BodyTimeout,
        ) as e:
            if buffer is not None:
                self.tee.count(TeeOutcome.INCOMPLETE)
            if upload is not None and upload.timed_out:
                return await self._body_timeout(request)
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
                args = (buffer, path, query, headers)
                asyncio.get_running_loop().call_soon(self.tee.cache, *args)
        return response

    async def _relay(
        self, request: web.Request, upstream: ClientResponse
    ) -> tuple[web.StreamResponse, bool]:
        """The answer for the client; (the response, True when the upstream's went whole)."""
        if not whole_answer(request, upstream):
            return await self._stream(request, upstream)
        try:
            body = await upstream.read()
        except (TimeoutError, ClientError, OSError) as e:  # nothing sent yet: say so
            return self._unanswered(e, UpstreamError.INTERRUPTED), False
        return RelayedWhole(upstream, body), True

    async def _stream(
        self, request: web.Request, upstream: ClientResponse
    ) -> tuple[web.StreamResponse, bool]:
        """Stream the answer to the client as it comes."""
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

    def _deadline(self) -> float | None:
        """When the body must be complete (loop time), counted from now: its headers."""
        timeout = self.tee.intake.body_timeout_s
        return asyncio.get_running_loop().time() + timeout if timeout else None

    async def _body_timeout(self, request: web.Request) -> web.StreamResponse:
        """408, counted, and the client's connection closed: its body came too slowly."""
        refusal = self.tee.intake.body_timeout()
        response = web.Response(body=refusal.body, status=refusal.status, content_type=JSON)
        response.force_close()
        # Sent and closed now: aiohttp would otherwise go on reading ("lingering") the
        # very body that did not come in time.
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away: nobody to tell
        request.protocol.force_close()
        return response

    def _unanswered(
        self, error: BaseException, reason: UpstreamError = UpstreamError.UNREACHABLE
    ) -> web.Response:
        """502, or 504 on a timeout: the client gets a whole answer that says why."""
        if isinstance(error, TimeoutError):
            self._failed(UpstreamError.TIMEOUT, error)
            limit = self.upstream.max_connections
            if self._forwarding > limit:  # it may have waited for a connection
                return error_response(
                    504,
                    "the upstream (the ingest container) did not answer in time: all "
                    f"{limit} connections to it (sidecar.proxy.max_upstream_connections) "
                    "were busy",
                )
            return error_response(504, "the upstream (the ingest container) did not answer in time")
        self._failed(reason, error)
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
    app.on_response_prepare.append(no_defaults)
    app.router.add_route("*", ANY_PATH, forward)
    return app
