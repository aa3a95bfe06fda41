"""The tee of the proxy: a bounded copy of a request body as it streams to the upstream,
cached once the forward is over.

The copy is kept as the chunks that went through (references, no copying) until it
would exceed `sidecar.ingest.max_request_bytes`; then it is let go and the request is
only forwarded. Once the upstream's whole answer has been relayed, the copy is decoded
(gzip and deflate, as the ingest listener's own reading does), its key found with the
`token_from` rules and its events handed to admission, which never waits: a full queue
drops and counts the copy. Nothing here can delay or fail the forward.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping

import structlog

from daemon.core.accounting import Outcome
from daemon.core.encoding import DecodeFailure, DecodeProblem, inflate
from daemon.core.model import RejectReason, TeeOutcome
from daemon.core.parse import TooManyEvents
from daemon.core.tokenfrom import TokenFinder
from daemon.web.capturing import request_tags
from daemon.web.front.pacer import Pacer
from daemon.web.front.routes import INLINE_BODY_BYTES
from daemon.web.front.server import ByteBudget
from daemon.web.ingest import SLICE_EVENTS, Intake

log = structlog.get_logger(__name__)


# The copies the door refused, as the ingest would have: counted in rejected_total too.
_REJECTED = {
    TeeOutcome.NO_BODY: RejectReason.NO_BODY,
    TeeOutcome.BAD_ID: RejectReason.BAD_ID,
    TeeOutcome.TOO_LARGE: RejectReason.TOO_LARGE,
    TeeOutcome.TOO_MANY_EVENTS: RejectReason.TOO_MANY_EVENTS,
    TeeOutcome.ENCODING: RejectReason.BAD_ENCODING,
}


class TeeBuffer:
    """The chunks of one request body, up to a limit; past it, nothing is kept."""

    __slots__ = ("chunks", "complete", "limit", "overflow", "size")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.overflow = False
        self.complete = False  # the whole body went through

    def add(self, chunk: bytes) -> None:
        """Keep `chunk` unless the copy is over the limit (then let all of it go)."""
        if self.overflow:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self.overflow = True
            self.chunks.clear()
        else:
            self.chunks.append(chunk)


def decoded(body: bytes, encoding: str, limit: int) -> bytes | TeeOutcome:
    """The body as the ingest would read it, or why it cannot be had within `limit`."""
    inflated = inflate(body, encoding, limit)
    if not isinstance(inflated, DecodeFailure):
        return inflated
    if inflated.problem is DecodeProblem.TOO_LARGE:
        return TeeOutcome.TOO_LARGE
    return TeeOutcome.ENCODING


class Tee:
    """Caches copies of proxied bodies like the ingest's raw token endpoint does.

    A copy over INLINE_BODY_BYTES is decoded and parsed in a step of its own, and its
    events admitted a slice a step, in the turns of the ingest side's pacer: as an
    ingest request of the same body is, so that copies never hold the loop longer."""

    def __init__(
        self, intake: Intake, finder: TokenFinder, pacer: Pacer, budget: ByteBudget
    ) -> None:
        self.intake = intake
        self.finder = finder
        self.pacer = pacer
        self.budget = budget
        self._outcomes = intake.metrics.proxy_tee

    def buffer_for(
        self,
        length: int | None,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> TeeBuffer | None:
        """A buffer when the body may be cached, else None (the outcome already counted).

        `length`: the body's Content-Length, None when chunked, 0 when there is none.
        """
        if not self.intake.enabled:
            outcome = TeeOutcome.DISABLED
        elif length == 0:
            outcome = TeeOutcome.NO_BODY
        elif length is not None and length > self.intake.max_request_bytes:
            outcome = TeeOutcome.TOO_LARGE  # known before a byte of it is kept
        elif self.finder.reads_body:
            return self._buffer(length)
        else:
            found = self.finder.find(path, query, headers)
            if found.token:
                return self._buffer(length)
            outcome = TeeOutcome.BAD_ID if found.bad_id else TeeOutcome.NO_KEY
        self.count(outcome)
        return None

    def _buffer(self, length: int | None) -> TeeBuffer | None:
        """A buffer for a copy of `length` bytes (None: chunked, up to the limit), its
        bytes reserved in the ingest side's budget; None when there is no room."""
        limit = self.intake.max_request_bytes
        buffer = TeeBuffer(limit)
        if self.budget.take(buffer, limit if length is None else length):
            return buffer
        self.count(TeeOutcome.BUSY)
        return None

    def let_go(self, buffer: TeeBuffer) -> None:
        """The copy is done with (cached, counted or dropped): its bytes back in the budget."""
        self.budget.release(buffer)

    def count(self, outcome: TeeOutcome) -> None:
        """Count what became of a copy; one refused at the door also as a rejection."""
        self._outcomes[outcome].inc()
        reason = _REJECTED.get(outcome)
        if reason is not None:
            self.intake.count_refusal(reason)

    def cache(
        self,
        buffer: TeeBuffer,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        then: Callable[[], None],
    ) -> None:
        """Cache the copy of a forwarded body (called once the answer was relayed), then
        call `then`: now when the copy is small, else in the pacer's turn (its client's
        next request waits for it, as on the ingest listener, so that copies waiting
        for their turn are bounded by the connections)."""
        if buffer.size <= INLINE_BODY_BYTES:
            self._cache_counted(buffer, path, query, headers)
            then()
            return

        def step() -> None:
            self._cache_counted(buffer, path, query, headers)
            then()

        self.pacer.add(step)

    def _cache_counted(
        self,
        buffer: TeeBuffer,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> None:
        try:
            outcome = self._cache(buffer, path, query, headers)
        except Exception:  # a bug here must never reach the forward
            log.exception("tee failed")
            outcome = TeeOutcome.INCOMPLETE
        finally:
            self.let_go(buffer)  # its events, if any, are in the queue's own bound now
        self.count(outcome)

    def _cache(
        self,
        buffer: TeeBuffer,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> TeeOutcome:
        if buffer.overflow:
            return TeeOutcome.TOO_LARGE
        if not buffer.complete:
            return TeeOutcome.INCOMPLETE
        limit = self.intake.max_request_bytes
        body = decoded(b"".join(buffer.chunks), headers.get("Content-Encoding", ""), limit)
        if isinstance(body, TeeOutcome):
            return body
        found = self.finder.find(path, query, headers, body)
        if found.token is None:
            reason = found.bad_id or self.finder.reason()
            log.debug("proxied request not cached", reason=reason)
            return TeeOutcome.BAD_ID if found.bad_id else TeeOutcome.NO_KEY
        try:
            tags = request_tags(self.intake.admission.capture_finder, headers.get)
            events = self.intake.events(body, found.token, parsed=found.parsed, tags=tags)
        except TooManyEvents:
            return TeeOutcome.TOO_MANY_EVENTS
        admission = self.intake.admission
        if len(events) <= SLICE_EVENTS:
            admission.submit(events)
        else:
            self._in_slices(admission.submit_in_slices(events, SLICE_EVENTS))
        return TeeOutcome.TEED

    def _in_slices(self, steps: Generator[None, None, Outcome]) -> None:
        """Admit a large copy one slice per turn of the pacer, as the ingest does."""
        try:
            next(steps)
        except StopIteration:
            return
        except Exception:  # a bug here must never reach the forward
            log.exception("tee failed")
            return
        self.pacer.add(lambda: self._in_slices(steps))
