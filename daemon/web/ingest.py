"""The ingest endpoints: pod-private, they take events and answer 202 at once.

Handlers read the body, parse it and hand the events to admission; they never wait
for Redis. Errors are JSON with a message naming the problem; a malformed body is not
an error, it is cached as malformed. `daemon.web.ingestserver` serves them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from aiohttp import web
from aiohttp.hdrs import CONTENT_ENCODING

from daemon.core.accounting import Outcome, ingest_answer
from daemon.core.encoding import DecodeFailure, DecodeProblem, inflate
from daemon.core.ids import check_id
from daemon.core.model import ListenerName, Namespace, RejectReason
from daemon.core.parse import LineError, LineReport, TooManyEvents, iter_ndjson, parse_token_body
from daemon.core.wire import ERROR_HEADER, SKIP_HEADER
from daemon.metrics import Metrics
from daemon.pipeline.admission import Admission
from daemon.web.responses import error_response, json_response

_JSON_SPACE = b" \t\r\n"  # the whitespace JSON allows around a value
# The 413's "limit": which bound the request met, so a client splits by that measure.
LIMIT_BYTES, LIMIT_EVENTS = "bytes", "events"


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

    def of(self, listener: ListenerName) -> Intake:
        """The same intake, its refusals counted for `listener`."""
        return replace(self, listener=listener)

    def refuse(
        self, reason: RejectReason, status: int, message: str, limit: str = ""
    ) -> web.Response:
        """The refusal's answer ({"message"}, and which limit a 413 met), counted."""
        self.metrics.rejected[self.listener][reason].inc()
        doc = {"message": message, "limit": limit} if limit else {"message": message}
        return json_response(doc, status)

    def too_many_events(self, count: int) -> web.Response:
        """The 413 of a request with more events than max_events_per_request."""
        return self.refuse(
            RejectReason.TOO_MANY_EVENTS,
            413,
            f"request holds {count} events; sidecar.ingest.max_events_per_request is "
            f"{self.max_events}: split it",
            limit=LIMIT_EVENTS,
        )


def _first_byte(body: bytes) -> bytes:
    """The body's first byte after JSON whitespace, without copying the body unless it
    starts with whitespace (rare: an ingest sends its JSON as it came)."""
    first = body[:1]
    return body.lstrip(_JSON_SPACE)[:1] if first and first in _JSON_SPACE else first


def header_text(value: str | None) -> str | None:
    """A header value as valid text: aiohttp keeps bytes that are not UTF-8 as surrogates,
    which cannot be encoded into an entry; they become U+FFFD like a malformed body's."""
    if not value:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


async def read_body(intake: Intake, request: web.BaseRequest) -> bytes | web.Response:
    """The request body, its Content-Encoding undone, or the error response that says
    why it cannot be taken."""
    if not intake.enabled:
        return error_response(503, "the events cache is disabled (server.cache.enabled)")
    length = request.content_length
    if length is not None and length > intake.max_request_bytes:
        return _too_large(intake, length)
    try:
        if request.content.is_eof() or not intake.body_timeout_s:  # came with its head
            body = await request.read()
        else:
            async with asyncio.timeout(intake.body_timeout_s):
                body = await request.read()
    except TimeoutError:
        response = intake.refuse(
            RejectReason.BODY_TIMEOUT,
            408,
            f"the request body was not complete {intake.body_timeout_s:g} s after its "
            "headers (sidecar.ingest.body_read_timeout_seconds)",
        )
        # Sent now, then the connection closed: aiohttp would otherwise keep reading
        # ("lingering") the very body that did not come in time.
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
        return response
    except web.HTTPRequestEntityTooLarge:
        return _too_large(intake, None)
    except web.RequestPayloadError as e:  # e.g. a chunked body with a broken chunk
        return error_response(400, f"cannot read the request body: {e}")
    except ConnectionResetError:  # the client went away mid-body: nobody to answer
        return error_response(400, "connection lost before the whole body arrived")
    encoding = request.headers.get(CONTENT_ENCODING)
    if not encoding:
        return body
    inflated = inflate(body, encoding, intake.max_request_bytes)
    if isinstance(inflated, DecodeFailure):
        if inflated.problem is DecodeProblem.TOO_LARGE:
            return intake.refuse(RejectReason.TOO_LARGE, 413, inflated.message, LIMIT_BYTES)
        status = 415 if inflated.problem is DecodeProblem.UNSUPPORTED else 400
        return intake.refuse(RejectReason.BAD_ENCODING, status, inflated.message)
    return inflated


def _too_large(intake: Intake, length: int | None) -> web.Response:
    size = f" ({length} bytes)" if length is not None else ""
    return intake.refuse(
        RejectReason.TOO_LARGE,
        413,
        f"request body{size} exceeds sidecar.ingest.max_request_bytes "
        f"({intake.max_request_bytes} bytes)",
        limit=LIMIT_BYTES,
    )


def accepted(
    outcome: Outcome, invalid: int = 0, errors: list[LineError] | None = None
) -> web.Response:
    """The 202 answer with the request's counts."""
    return json_response(ingest_answer(outcome, invalid, errors or []), 202)


async def token_events(intake: Intake, request: web.BaseRequest, token: str) -> web.Response:
    """POST /v1/token/{token_id}/events: the body as the ingest received it."""
    problem = check_id(token)
    if problem:
        return intake.refuse(RejectReason.BAD_ID, 400, f"token_id {problem}")
    body = await read_body(intake, request)
    if isinstance(body, web.Response):
        return body
    headers = request.headers
    ingest_error = header_text(headers.get(ERROR_HEADER))
    if not ingest_error and _first_byte(body) != b"[":
        # One event, whatever the body is (only an array makes more): when both lists of
        # the token are limited, its outcome is known without parsing it.
        outcome = intake.admission.limited_outright(Namespace.TOKEN, token)
        if outcome is not None:
            return accepted(outcome)
    try:
        events = parse_token_body(
            body,
            token,
            intake.max_malformed_bytes,
            skip=header_text(headers.get(SKIP_HEADER)),
            ingest_error=ingest_error,
            max_events=intake.max_events,
        )
    except TooManyEvents as e:
        return intake.too_many_events(e.count)
    return accepted(intake.admission.submit(events))


async def ndjson_events(intake: Intake, request: web.BaseRequest) -> web.Response:
    """POST /v1/events: NDJSON entries of both namespaces, ids mixed freely."""
    body = await read_body(intake, request)
    if isinstance(body, web.Response):
        return body
    lines = body.count(b"\n") + (not body.endswith(b"\n"))
    if lines > intake.max_events:
        return intake.too_many_events(lines)
    report = LineReport()  # invalid lines are counted into it as submit() reads the lines
    outcome = intake.admission.submit(iter_ndjson(body, intake.max_malformed_bytes, report))
    if report.invalid:
        intake.metrics.invalid.inc(report.invalid)
    return accepted(outcome, report.invalid, report.errors)
