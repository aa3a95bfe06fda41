"""The ingest API: pod-private listeners that take events and answer 202 at once.

Handlers parse, rate limit and queue; they never wait for Redis. A rate-limited event
is counted and forgotten before anything is encoded or queued, so it never touches
Redis. Counters move once per request, not once per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from aiohttp import web

from daemon.config import Config
from daemon.entry import Collection, DropReason, Namespace, ParsedEvent, Target, encode
from daemon.limiter import LimitedCounter, RateLimiters
from daemon.metrics import Metrics
from daemon.parse import LineError, ParsedBatch, check_id, iter_ndjson, parse_token_body
from daemon.redact import Redactor
from daemon.writer import EventQueue, QueuedEntry

SKIP_HEADER = "X-Events-Cache-Skip"
ERROR_HEADER = "X-Events-Cache-Error"
JSON = "application/json"
_ALL, _ERROR = int(Target.ALL), int(Target.ERROR)  # plain ints on the hot path


def json_response(doc: object, status: int) -> web.Response:
    """A JSON response without aiohttp's slower stdlib encoder."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type=JSON)


def error_response(status: int, message: str) -> web.Response:
    """The error shape of both APIs: {"message": ...}."""
    return json_response({"message": message}, status)


def _header_text(value: str | None) -> str | None:
    """A header value as valid text: aiohttp keeps bytes that are not UTF-8 as surrogates,
    which cannot be encoded into an entry; they become U+FFFD like a malformed body's."""
    if not value:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(slots=True)
class Outcome:
    """What happened to the events of one request."""

    accepted: int = 0
    rate_limited: int = 0
    dropped: int = 0


class Ingestor:
    """Rate limits events and queues the ones that may be cached."""

    def __init__(
        self,
        config: Config,
        queue: EventQueue,
        limiters: RateLimiters,
        limited: LimitedCounter,
        metrics: Metrics,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._limiters = limiters
        self._limited = limited
        self._metrics = metrics
        self._monotonic = monotonic
        self._wall = wall
        self.max_request_bytes = config.ingest.max_request_bytes
        self.max_malformed_bytes = config.cache.events.max_malformed_event_bytes
        self.enabled = config.cache.enabled
        # server.cache.events.redact: None when empty, so the hot path pays one test
        redact = config.cache.events.redact
        self._redact = Redactor(redact) if redact else None

    def submit(self, events: Iterable[ParsedEvent]) -> Outcome:
        """Limit, encode and queue `events`; update the counters once.

        The hot path of the ingest: targets are plain ints (IntFlag operators are
        Python-level calls), and limited counts are summed per key before they reach
        the shared counter.
        """
        now, wall = self._monotonic(), self._wall()
        allow, put = self._limiters.allow, self._queue.put
        redact = self._redact
        all_, error_ = Collection.ALL, Collection.ERROR
        accepted = rate_limited = dropped = malformed = 0
        received: dict[Namespace, int] = {}
        limited_all: dict[Namespace, int] = {}
        limited_error: dict[Namespace, int] = {}
        limited_keys: dict[tuple[Namespace, str, Collection], int] = {}
        for event in events:
            ns, id_ = event.namespace, event.id
            received[ns] = received.get(ns, 0) + 1
            key = (ns, id_, all_)
            if allow(key, now):
                target = _ALL
            else:
                target = 0
                limited_keys[key] = limited_keys.get(key, 0) + 1
            if event.malformed is not None:
                malformed += 1
            if event.error or event.malformed:  # event.is_error, without the call
                error_key = (ns, id_, error_)
                if allow(error_key, now):
                    target |= _ERROR
                else:
                    limited_keys[error_key] = limited_keys.get(error_key, 0) + 1
                    limited_error[ns] = limited_error.get(ns, 0) + 1
            if not target:
                rate_limited += 1
                limited_all[ns] = limited_all.get(ns, 0) + 1
                continue
            if redact is not None and event.original:
                event.original = redact.redact_text(event.original)
            if put(QueuedEntry(ns, id_, target, encode(event, wall))):
                if target & _ALL:
                    accepted += 1
                else:
                    rate_limited += 1  # cached in the error list only
            else:
                dropped += 1
        add_limited = self._limited.add
        for key, n in limited_keys.items():
            add_limited(key, wall, n)
        outcome = Outcome(accepted, rate_limited, dropped)
        self._count(outcome, received, limited_all, limited_error, malformed)
        return outcome

    def _count(
        self,
        outcome: Outcome,
        received: dict[Namespace, int],
        limited_all: dict[Namespace, int],
        limited_error: dict[Namespace, int],
        malformed: int,
    ) -> None:
        m = self._metrics
        for ns, n in received.items():
            m.received[ns].inc(n)
        for ns, n in limited_all.items():
            m.rate_limited[ns, Collection.ALL].inc(n)
        for ns, n in limited_error.items():
            m.rate_limited[ns, Collection.ERROR].inc(n)
        if outcome.dropped:
            m.dropped[DropReason.QUEUE_FULL].inc(outcome.dropped)
        if malformed:
            m.malformed.inc(malformed)

    async def _body(self, request: web.Request) -> bytes | web.Response:
        if not self.enabled:
            return error_response(503, "the events cache is disabled (server.cache.enabled)")
        length = request.content_length
        if length is not None and length > self.max_request_bytes:
            return self._too_large(length)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(None)
        except web.RequestPayloadError as e:  # e.g. a body that is not the Content-Encoding
            return error_response(400, f"cannot read the request body: {e}")
        except ConnectionResetError:  # the client went away mid-body: nobody to answer
            return error_response(400, "connection lost before the whole body arrived")

    def _too_large(self, length: int | None) -> web.Response:
        size = f" ({length} bytes)" if length is not None else ""
        return error_response(
            413,
            f"request body{size} exceeds sidecar.ingest.max_request_bytes "
            f"({self.max_request_bytes} bytes)",
        )

    async def token_events(self, request: web.Request) -> web.Response:
        """POST /v1/token/{token_id}/events: the body as the ingest received it."""
        token = request.match_info["token_id"]
        problem = check_id(token)
        if problem:
            return error_response(400, f"token_id {problem}")
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        headers = request.headers
        events = parse_token_body(
            body,
            token,
            self.max_malformed_bytes,
            skip=_header_text(headers.get(SKIP_HEADER)),
            ingest_error=_header_text(headers.get(ERROR_HEADER)),
        )
        return self._accepted(self.submit(events), 0, [])

    async def ndjson_events(self, request: web.Request) -> web.Response:
        """POST /v1/events: NDJSON entries of both namespaces, ids mixed freely."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        batch = ParsedBatch()  # invalid lines are counted into it as submit() reads the lines
        outcome = self.submit(iter_ndjson(body, self.max_malformed_bytes, batch))
        if batch.invalid:
            self._metrics.invalid.inc(batch.invalid)
        return self._accepted(outcome, batch.invalid, batch.errors)

    @staticmethod
    def _accepted(outcome: Outcome, invalid: int, errors: list[LineError]) -> web.Response:
        return json_response(
            {
                "accepted": outcome.accepted,
                "rate_limited": outcome.rate_limited,
                "dropped": outcome.dropped,
                "invalid": invalid,
                "errors": [{"line": e.line, "message": e.message} for e in errors],
            },
            202,
        )

    def routes(self) -> list[web.RouteDef]:
        """The ingest listener's routes."""
        return [
            web.post("/v1/token/{token_id}/events", self.token_events),
            web.post("/v1/events", self.ndjson_events),
        ]
