"""What the ingest side does with a request once its body is read: the answers of the
ingest endpoints and the mirror, independent of the HTTP server that reads them.

Handlers parse the body and hand the events to admission; they never wait for Redis.
Errors are JSON with a message naming the problem; a malformed body is not an error, it
is cached as malformed. Every refusal at the door is counted by listener and reason.
`daemon.web.front` reads the requests and writes these answers.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from daemon.config.model import EventsSettings
from daemon.config.sidecar import IngestSettings
from daemon.core.accounting import Outcome
from daemon.core.encoding import DecodeFailure, DecodeProblem, inflate
from daemon.core.entry import ParsedEvent
from daemon.core.ids import check_id
from daemon.core.model import ListenerName, Namespace, RejectReason
from daemon.core.ndjson import iter_ndjson, ndjson_slices
from daemon.core.parse import LineReport, TooManyEvents, parse_token_body
from daemon.core.wire import ERROR_HEADER, SKIP_HEADER
from daemon.metrics import Metrics
from daemon.pipeline.admission import Admission
from daemon.web import capturing as cap
from daemon.web.answers import Answer, accepted, answer, message

__all__ = ["Answer", "Intake", "Work", "accepted", "answer", "message"]

_TOKEN = Namespace.TOKEN
_JSON_SPACE = b" \t\r\n"  # the whitespace JSON allows around a value
# The 413's "limit": which bound the request met, so a client splits by that measure.
LIMIT_BYTES, LIMIT_EVENTS = "bytes", "events"
_ERROR_HEADER, _SKIP_HEADER = ERROR_HEADER.lower().encode(), SKIP_HEADER.lower().encode()
_CONTENT_ENCODING = b"content-encoding"
DISABLED = "the events cache is disabled (server.cache.enabled)"

# A request's headers as the server read them: lower-case names, raw values.
RawHeaders = Mapping[bytes, bytes]
# Events (NDJSON: lines, valid or not) admitted between two turns of the event loop: a
# request with more is admitted in slices of this many (its lines parsed as they are
# admitted, for NDJSON), each a few milliseconds at most, so that no request holds the
# loop for long.
SLICE_EVENTS = 500


# An answer worked out in slices: the server runs it a step at a time, letting the
# event loop turn between steps, and sends what it returns.
Work = Generator[None, None, Answer]


def header_text(value: bytes | None) -> str | None:
    """A header value as valid text (bytes that are not UTF-8 become U+FFFD, as a
    malformed body's do), or None when absent or empty."""
    return value.decode("utf-8", "replace") if value else None


def _first_byte(body: bytes) -> bytes:
    """The body's first byte after JSON whitespace, without copying the body unless it
    starts with whitespace (rare: an ingest sends its JSON as it came)."""
    first = body[:1]
    return body.lstrip(_JSON_SPACE)[:1] if first and first in _JSON_SPACE else first


@dataclass(frozen=True, slots=True)
class Intake:
    """What an ingest-side listener's handlers share: admission, the request bounds, the
    metrics, and the refusal counters of that listener."""

    admission: Admission
    metrics: Metrics
    max_request_bytes: int
    max_malformed_bytes: int
    enabled: bool
    max_events: int
    body_timeout_s: float
    listener: ListenerName = ListenerName.INGEST

    @classmethod
    def from_settings(
        cls,
        admission: Admission,
        metrics: Metrics,
        ingest: IngestSettings,
        events: EventsSettings,
        enabled: bool,
    ) -> Intake:
        """The ingest listener's intake: its bounds from `sidecar.ingest`, a malformed
        body's from `server.cache.events`, `enabled` from `server.cache.enabled`."""
        return cls(
            admission,
            metrics,
            ingest.max_request_bytes,
            events.max_malformed_event_size_bytes,
            enabled,
            ingest.max_events_per_request,
            ingest.body_read_timeout_seconds,
        )

    def of(self, listener: ListenerName) -> Intake:
        """The same intake, its refusals counted for `listener`."""
        return replace(self, listener=listener)

    def refuse(
        self, reason: RejectReason, status: int, text: str, limit: str = "", close: bool = False
    ) -> Answer:
        """The refusal's answer ({"message"}; for a 413, which limit it met and that
        limit's value as "max", so that a client splits by it), counted."""
        self.count_refusal(reason)
        if limit == LIMIT_BYTES:
            return answer(
                {"message": text, "limit": limit, "max": self.max_request_bytes}, status, close
            )
        if limit == LIMIT_EVENTS:
            return answer({"message": text, "limit": limit, "max": self.max_events}, status, close)
        return answer({"message": text}, status, close)

    def count_refusal(self, reason: RejectReason) -> None:
        """Count a request refused at this listener's door."""
        self.metrics.rejected[self.listener][reason].inc()

    def too_large(self, length: int | None = None) -> Answer:
        """The 413 of a body over max_request_bytes; the rest of it is not read."""
        size = f" ({length} bytes)" if length is not None else ""
        return self.refuse(
            RejectReason.TOO_LARGE,
            413,
            f"request body{size} exceeds sidecar.ingest.max_request_bytes "
            f"({self.max_request_bytes} bytes)",
            limit=LIMIT_BYTES,
            close=True,
        )

    def too_many_events(self, count: int) -> Answer:
        """The 413 of a request with more events than max_events_per_request."""
        return self.refuse(
            RejectReason.TOO_MANY_EVENTS,
            413,
            f"request holds {count} events; sidecar.ingest.max_events_per_request is "
            f"{self.max_events}: split it",
            limit=LIMIT_EVENTS,
        )

    def body_timeout(self) -> Answer:
        """The 408 of a body not complete in time; the connection closes after it."""
        return self.refuse(
            RejectReason.BODY_TIMEOUT,
            408,
            f"the request body was not complete {self.body_timeout_s:g} s after its "
            "headers (sidecar.ingest.body_read_timeout_seconds)",
            close=True,
        )

    def inflated(self, body: bytes, headers: RawHeaders) -> bytes | Answer:
        """The body with its Content-Encoding undone within max_request_bytes, or why not."""
        encoding = headers.get(_CONTENT_ENCODING)
        if not encoding:
            return body
        result = inflate(body, encoding.decode("latin-1"), self.max_request_bytes)
        if not isinstance(result, DecodeFailure):
            return result
        if result.problem is DecodeProblem.TOO_LARGE:
            return self.refuse(RejectReason.TOO_LARGE, 413, result.message, LIMIT_BYTES)
        status = 415 if result.problem is DecodeProblem.UNSUPPORTED else 400
        return self.refuse(RejectReason.BAD_ENCODING, status, result.message)

    def token_problem(self, token: str) -> Answer | None:
        """The 400 of a token id the id rule refuses (checked before the body is read)."""
        problem = check_id(token)
        if problem is None:
            return None
        return self.refuse(RejectReason.BAD_ID, 400, f"token_id {problem}")

    def token_events(self, token: str, raw: bytes, headers: RawHeaders) -> Answer | Work:
        """POST /v1/token/{token_id}/events: the body as the ingest received it."""
        body = self.inflated(raw, headers) if _CONTENT_ENCODING in headers else raw
        if isinstance(body, Answer):
            return body
        ingest_error = header_text(headers[_ERROR_HEADER]) if _ERROR_HEADER in headers else None
        finder = self.admission.capture_finder
        tags = cap.raw_tags(finder, headers)
        if not ingest_error and _first_byte(body) != b"[" and cap.untagged(finder, body, tags):
            # One event, whatever the body is (only an array makes more): when the lists
            # it could go to are limited, its outcome is known without building it.
            outcome = self.admission.limited_outright(Namespace.TOKEN, token, body)
            if outcome is not None:
                return accepted(outcome)
        skip = header_text(headers.get(_SKIP_HEADER))
        try:
            events = self.events(body, token, skip=skip, ingest_error=ingest_error, tags=tags)
        except TooManyEvents as e:
            return self.too_many_events(e.count)
        return self.admit(events, len(events), accepted)

    def events(
        self,
        body: bytes,
        token: str,
        parsed: tuple[Any] | None = None,
        skip: str | None = None,
        ingest_error: str | None = None,
        tags: cap.Tags = None,
    ) -> list[ParsedEvent]:
        """The events of a raw token body, within this listener's bounds, tagged by the
        capture rules; TooManyEvents when it holds more than max_events_per_request."""
        events = parse_token_body(
            body,
            token,
            self.max_malformed_bytes,
            skip=skip,
            ingest_error=ingest_error,
            parsed=parsed,
            max_events=self.max_events,
        )
        cap.tag_all(self.admission.capture_finder, events, tags)
        return events

    def admit(
        self, events: Iterable[ParsedEvent], count: int, finish: Callable[[Outcome], Answer]
    ) -> Answer | Work:
        """Admit `events` (about `count` of them) and answer with `finish`: at once, or
        in slices when there are more than SLICE_EVENTS."""
        if count <= SLICE_EVENTS:
            return finish(self.admission.submit(events))
        return self._in_slices(self.admission.submit_in_slices(events, SLICE_EVENTS), finish)

    def _in_slices(
        self, steps: Generator[None, None, Outcome], finish: Callable[[Outcome], Answer]
    ) -> Work:
        outcome = yield from steps
        return finish(outcome)

    def ndjson_events(self, raw: bytes, headers: RawHeaders) -> Answer | Work:
        """POST /v1/events: NDJSON entries of both namespaces, ids mixed freely."""
        body = self.inflated(raw, headers) if _CONTENT_ENCODING in headers else raw
        if isinstance(body, Answer):
            return body
        lines = body.count(b"\n") + (not body.endswith(b"\n"))
        if lines > self.max_events:
            return self.too_many_events(lines)
        report = LineReport()  # invalid lines are counted into it as they are read
        seen: dict[Any, int] = {}  # the request's ids in order, for the answer's "limited"

        def finish(outcome: Outcome) -> Answer:
            if report.invalid:
                self.metrics.invalid.inc(report.invalid)
            if report.at_source:
                self.admission.count_at_source(report.at_source)
            limited = self.admission.limited_after(seen)
            return accepted(outcome, report.invalid, report.errors, limited)

        max_bytes, finder = self.max_malformed_bytes, self.admission.capture_finder
        tags = cap.raw_tags(finder, headers)
        limited = cap.unless_tagged(finder, body, tags, partial(self.admission.all_limited, _TOKEN))
        if lines <= SLICE_EVENTS:
            events = cap.tagged(finder, tags, iter_ndjson(body, max_bytes, report, limited))
            return finish(self.admission.submit(events, seen))
        # Sliced by lines, not by events: an invalid line costs its parse and its message.
        slices = ndjson_slices(body, max_bytes, report, SLICE_EVENTS, limited)
        steps = self.admission.submit_slices(cap.tagged_slices(finder, tags, slices), seen)
        return self._in_slices(steps, finish)
