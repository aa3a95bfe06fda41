"""The tee proxy: in front of the ingest container, every request forwarded unchanged.

Method, target (as received, not re-encoded), headers (order, case and repeats kept;
hop-by-hop ones dropped, X-Forwarded-* added: `daemon.web.front.heads`) and the body,
streamed as it arrives; the upstream's answer comes back the same way: status, reason,
headers and body, bytes untouched (no decompression either way). Both sides speak
HTTP/1.1 through httptools (`daemon.web.front.forward` for the clients,
`daemon.web.front.upstream` for the upstream), as the ingest listener does: no web
framework's cost on every request of the pod.

502 `{"message"}` when the upstream cannot be reached or its small answer breaks off,
504 when it does not answer in time; once a streamed answer has begun, a failure cuts
the client's connection so that the client sees a broken answer, never a
complete-looking one. Bounded: at most `max_upstream_connections` open to the upstream
(a request beyond them waits for one within the connect timeout, then 504), and a body
not complete `body_read_timeout_seconds` after its head is cut (408, the connection
closed, the forward aborted and its upstream connection closed).

The body is copied into a bounded buffer as it streams through (`daemon.web.tee`) and
cached after the answer was relayed, when the upstream answered 2xx.
"""

from __future__ import annotations

import time

import structlog

from daemon.core.model import UpstreamError
from daemon.metrics import Metrics
from daemon.web.front.pool import Upstream, UpstreamPool
from daemon.web.ingest import Answer, message
from daemon.web.tee import Tee

WARN_EVERY_S = 10.0
UNANSWERED = "the upstream (the ingest container) did not answer"
LATE = "the upstream (the ingest container) did not answer in time"

log = structlog.get_logger(__name__)


class Proxy:
    """What every forward shares: the upstream's connections, the tee, the counts."""

    def __init__(self, upstream: Upstream, tee: Tee, metrics: Metrics) -> None:
        self.upstream = upstream
        self.tee = tee
        self.times = metrics.proxy_times
        self._errors = metrics.proxy_upstream_errors
        self._warned: dict[UpstreamError, float] = {}
        self._pool: UpstreamPool | None = None

    @property
    def pool(self) -> UpstreamPool:
        """The upstream's connections (once started)."""
        assert self._pool is not None, "the proxy is not started"
        return self._pool

    async def start(self) -> None:
        """Ready the connection pool (on the running loop)."""
        self._pool = UpstreamPool(self.upstream)

    async def close(self) -> None:
        """Close the pool (after the listener: in-flight forwards are done)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def unanswered(self, reason: UpstreamError, busy: bool) -> Answer:
        """502, or 504 on a timeout: the client gets a whole answer that says why."""
        if reason is not UpstreamError.TIMEOUT:
            return message(502, UNANSWERED)
        if busy:
            limit = self.upstream.max_connections
            return message(
                504,
                f"{LATE}: all {limit} connections to it "
                "(sidecar.proxy.max_upstream_connections) were busy",
            )
        return message(504, LATE)

    def failed(self, reason: UpstreamError, error: BaseException) -> None:
        """Count a failed forward; warn at most every WARN_EVERY_S per reason."""
        self._errors[reason].inc()
        now = time.monotonic()
        if now - self._warned.get(reason, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[reason] = now
            log.warning(
                "proxy upstream failed",
                reason=reason,
                upstream=self.upstream.url.rstrip("/"),
                error=repr(error),
            )
