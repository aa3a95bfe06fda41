"""What both flavours share: the bounded buffer, the counters, batching and answers.

Sans I/O: the threaded and the asyncio client only move bytes and wait.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from events_cache_client import _lines
from events_cache_client._holds import Holds, count_lines_in, one_object
from events_cache_client._lines import (
    DESTINATION,
    TOKEN_JSON,
    TOKEN_RAW,
    TOKEN_VOUCHED,
    Encoded,
    encode,
)
from events_cache_client._settings import Settings

log = logging.getLogger("events_cache_client")

LAST_ERRORS = 10  # messages kept for the application to read
MIN_BACKOFF_S = 0.05
# The 413's "limit": which bound the sidecar applied. An older sidecar names none: bytes.
LIMIT_BYTES, LIMIT_EVENTS = "bytes", "events"
# The sidecar's 413 for events names its bound in the message; without it, halve.
_EVENTS_BOUND = re.compile(r"max_events_per_request is (\d+)")
Item = tuple[Any, ...]
FLUSH = 3  # the kind of a flush marker among the items


class Marker(Protocol):
    """What flush() waits on: a threading.Event or an asyncio.Event."""

    def set(self) -> None: ...


Batch = list[bytes]


@dataclass(frozen=True)
class Stats:
    """A snapshot of the client's counters (events unless said otherwise).

    Every event handed to the client ends in exactly one of accepted, rate_limited,
    invalid, held_back or a dropped_* counter, or is still buffered / in flight. A raw array
    body counts once until the sender splits it into its elements.
    """

    sent: int = 0  # events in requests the sidecar answered 202
    accepted: int = 0  # queued by the sidecar for Redis
    rate_limited: int = 0  # not cached: the sidecar's rate limit
    invalid: int = 0  # lines the sidecar rejected (see last_errors)
    dropped_buffer_full: int = 0  # the client's buffer was full at the call
    dropped_unavailable: int = 0  # the sidecar was away (refused, missing, timed out)
    dropped_oversized: int = 0  # one event bigger than max_request_bytes
    dropped_queue_full: int = 0  # the sidecar's own queue was full (its 202 `dropped`)
    dropped_rejected: int = 0  # the sidecar answered neither 202 nor 413 (e.g. 503)
    dropped_unencodable: int = 0  # a value json could not encode
    dropped_closed: int = 0  # handed over after close(), or left when close() timed out
    held_back: int = 0  # not sent: the sidecar said it would limit them (sent as counts)
    buffered: int = 0  # waiting in the buffer or in flight now
    requests: int = 0  # HTTP requests the sidecar answered
    too_large: int = 0  # 413 answers, for bytes or for events (the batch split and resent)
    last_errors: list[str] = field(default_factory=list)  # newest last, at most 10
    # What one request may carry now: max_request_bytes and max_batch_events, lowered
    # for good by a 413 that names that measure (not counters; left out of `dropped`).
    request_limit_bytes: int = 0
    request_limit_events: int = 0

    @property
    def dropped(self) -> int:
        """Every event dropped, whatever the reason."""
        return sum(v for k, v in asdict(self).items() if k.startswith("dropped_"))

    def as_dict(self) -> dict[str, Any]:
        """The counters as a dict (for logs and metrics), with the `dropped` total."""
        return {**asdict(self), "dropped": self.dropped}


class Buffer:
    """Bounded by events and bytes, filled by any thread, emptied by the sender.

    The call's path takes no lock: a deque append is atomic, and the byte count is the
    difference of two running totals, one written by the callers and one by the sender
    alone, so a race between callers can only make the bound a little looser, never
    stick. Refusals are rare and counted under a lock.
    """

    def __init__(self, max_events: int, max_bytes: int, batch_events: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.batch_events = batch_events
        self.lock = threading.Lock()
        self.items: collections.deque[Item] = collections.deque()
        self.added = 0  # bytes ever buffered (callers)
        self.removed = 0  # bytes taken off (the sender)
        self.in_flight = 0  # items the sender holds (the sender)
        self.dropped_full = 0
        self.dropped_unencodable = 0
        self.dropped_closed = 0
        self.closed = False

    def put(self, item: Item) -> bool:
        """Buffer an item; True when the sender should wake (a batch is ready)."""
        items = self.items
        size = item[-1]
        if (
            len(items) < self.max_events
            and self.added - self.removed + size <= self.max_bytes
            and not self.closed
        ):
            items.append(item)
            self.added += size
            return len(items) == self.batch_events
        with self.lock:
            if self.closed:
                self.dropped_closed += 1
            else:
                self.dropped_full += 1
        return False

    def mark(self, marker: Marker) -> None:
        """Queue a marker the sender sets once everything buffered before it is done."""
        self.items.append((FLUSH, marker, 0))

    def take(self, n: int) -> tuple[list[Item], list[Marker]]:
        """Up to `n` items, oldest first, and the markers among them; the items count
        as in flight until `finished`."""
        items = self.items
        count = min(n, len(items))
        self.in_flight = count  # before they leave the deque: flush() sees them throughout
        taken: list[Item] = []
        markers: list[Marker] = []
        size = 0
        for _ in range(count):
            item = items.popleft()
            if item[0] == FLUSH:
                markers.append(item[1])
            else:
                taken.append(item)
                size += item[-1]
        self.removed += size
        return taken, markers

    def finished(self) -> None:
        self.in_flight = 0

    def drain_closed(self) -> list[Marker]:
        """Drop what is still buffered (close() ran out of time); the markers found."""
        markers: list[Marker] = []
        with self.lock:
            while self.items:
                item = self.items.popleft()
                if item[0] == FLUSH:
                    markers.append(item[1])
                else:
                    self.dropped_closed += 1
                    self.removed += item[-1]
        return markers

    def pending(self) -> int:
        """Events buffered or in flight (flush markers aside)."""
        return len(self.items) + self.in_flight


def token_item(
    token_id: str,
    body: Any,
    skip: str | None,
    error: str | None,
    now: float,
    capture: str | None = None,
    parsed: bool = False,
) -> Item:
    """The buffered form of incoming(): raw text is kept as is (immutable), a parsed
    value is encoded now (a snapshot: the application may change it afterwards).
    `capture`: the tag of a test run, sent as the line's "capture" (never held back);
    `parsed`: the caller vouches that raw text is JSON (an object is then sent unparsed)."""
    pad = 64 if capture is None else 80 + len(capture)
    if isinstance(body, (bytes, str)):
        if parsed and not error and one_object(body, True):
            if isinstance(body, str):
                return (TOKEN_JSON, token_id, body, skip, None, now, capture, len(body) + pad)
            return (TOKEN_VOUCHED, token_id, body, skip, None, now, capture, len(body) + pad)
        return (TOKEN_RAW, token_id, body, skip, error, now, capture, len(body) + pad)
    if isinstance(body, (bytearray, memoryview)):
        return token_item(token_id, bytes(body), skip, error, now, capture, parsed)
    text = encode(body)
    if isinstance(body, dict) and not error:
        return (TOKEN_JSON, token_id, text, skip, None, now, capture, len(text) + pad)
    return (TOKEN_RAW, token_id, text, skip, error, now, capture, len(text) + pad)


def _value(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return Encoded(encode(value))


def destination_item(
    destination_id: str,
    original: Any,
    success: Any,
    error: str | None,
    skip: str | None,
    token_id: str | None,
    now: float,
    capture: str | None = None,
) -> Item:
    """The buffered form of processed(). Exactly one outcome is expected: a line with
    none or several is sent as it is and the sidecar reports it as invalid."""
    outcome: list[tuple[str, Any]] = []
    size = 96
    if success is not None:
        outcome.append(("success", _value(success)))
        size += len(outcome[-1][1])
    if error is not None:
        outcome.append(("error", error))
        size += len(error)
    if skip is not None:
        outcome.append(("skip", skip))
        size += len(skip)
    value = _value(original)
    size += len(value) + (len(capture) + 16 if capture is not None else 0)
    return (DESTINATION, destination_id, value, outcome, token_id, now, capture, size)


class Backoff:
    """Connection attempts while the sidecar is away: 50 ms doubling up to a maximum."""

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s
        self.delay = 0.0
        self.until = 0.0

    def failed(self, now: float) -> None:
        self.delay = min(max(self.delay * 2, MIN_BACKOFF_S), self.max_s)
        self.until = now + self.delay

    def succeeded(self) -> None:
        self.delay = 0.0
        self.until = 0.0

    def waiting(self, now: float) -> bool:
        return now < self.until

    @property
    def down(self) -> bool:
        return self.delay > 0


class Core:
    """Counters, batching and the handling of the sidecar's answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.buffer = Buffer(
            settings.buffer_events, settings.buffer_bytes, settings.max_batch_events
        )
        self.builder = _lines.LineBuilder(settings.max_malformed_bytes, settings.timestamps)
        self.backoff = Backoff(settings.max_backoff_s)
        self.holds = Holds()  # limits at the source
        self.limit_bytes = settings.max_request_bytes  # lowered after a 413 for bytes
        self.limit_events = settings.max_batch_events  # lowered after a 413 for events
        self.last_errors: collections.deque[str] = collections.deque(maxlen=LAST_ERRORS)
        self.counts: dict[str, int] = dict.fromkeys(
            (
                "sent",
                "accepted",
                "rate_limited",
                "invalid",
                "dropped_unavailable",
                "dropped_oversized",
                "dropped_queue_full",
                "dropped_rejected",
                "dropped_unencodable",
                "requests",
                "too_large",
            ),
            0,
        )

    def stats(self) -> Stats:
        b = self.buffer
        c = dict(self.counts)
        c["dropped_unencodable"] += b.dropped_unencodable
        return Stats(
            **c,
            dropped_buffer_full=b.dropped_full,
            dropped_closed=b.dropped_closed,
            held_back=self.holds.held,
            buffered=b.pending(),
            last_errors=list(self.last_errors),
            request_limit_bytes=self.limit_bytes,
            request_limit_events=self.limit_events,
        )

    def error(self, message: str) -> None:
        self.last_errors.append(message)

    def call_failed(self, e: Exception) -> None:
        """A value of a call could not be encoded: counted, never raised."""
        with self.buffer.lock:
            self.buffer.dropped_unencodable += 1
        self.error(f"cannot encode an event: {type(e).__name__}: {e}")

    def batches(self, items: list[Item]) -> list[Batch]:
        """Lines of `items` grouped so that each body stays within both limits (a raw
        array body gives a line per element, so items alone do not bound the count)."""
        out: list[Batch] = []
        batch: Batch = []
        size = 0
        hard = self.settings.max_request_bytes
        for item in items:
            try:
                lines = self.builder.lines(item)
            except (ValueError, TypeError, RecursionError) as e:
                self.counts["dropped_unencodable"] += 1
                self.error(f"cannot encode an event: {type(e).__name__}: {e}")
                continue
            for line in lines:
                n = len(line) + 1
                if n > hard:
                    self.counts["dropped_oversized"] += 1
                    self.error(f"event of {n} bytes dropped: over max_request_bytes ({hard})")
                    continue
                if batch and (size + n > self.limit_bytes or len(batch) >= self.limit_events):
                    out.append(batch)
                    batch, size = [], 0
                batch.append(line)
                size += n
        if batch:
            out.append(batch)
        return out

    def with_counts(self, batches: list[Batch]) -> list[Batch]:
        """The held-back counts at the head of the first batch (a batch of their own
        when there is none)."""
        heads = self.holds.take_lines()
        if not heads:
            return batches
        if not batches:
            return [heads]
        return [heads + batches[0], *batches[1:]]

    def counts_due(self, now: float) -> list[Batch]:
        """The counts as a request of their own, when no request carried them in time."""
        return self.with_counts([]) if self.holds.due(now) else []

    def answered(self, batch: Batch, status: int, body: bytes) -> list[Batch]:
        """Count the sidecar's answer to `batch`; the pieces to resend after a 413."""
        self.counts["requests"] += 1
        if status == 202:
            self._accepted(batch, body)
            return []
        if status == 413:
            self.counts["too_large"] += 1
            if len(batch) == 1:  # refused alone: resending cannot help
                self.counts["dropped_oversized"] += 1
                self.error(f"event of {len(batch[0]) + 1} bytes dropped: {_message(body)}")
                return []
            if _limit(body) == LIMIT_EVENTS:
                return self._too_many_events(batch, body)
            size = sum(len(line) + 1 for line in batch)
            self.limit_bytes = min(self.limit_bytes, max(size // 2, 1))
            half = len(batch) // 2
            return [batch[:half], batch[half:]]
        self.counts["dropped_rejected"] += len(batch) - count_lines_in(batch)
        self.error(f"sidecar answered {status}: {_message(body)}")
        return []

    def _too_many_events(self, batch: Batch, body: bytes) -> list[Batch]:
        """A 413 for events: the byte limit stays, the event cap drops to the sidecar's
        bound (its "max"; from an older sidecar, the number its message names; else half
        the batch), and the batch goes again in pieces of that many. Each piece is
        smaller than the batch, so a refusal repeated down to one event ends."""
        cap = _events_bound(body)
        if not 0 < cap < len(batch):
            cap = len(batch) // 2
        self.limit_events = min(self.limit_events, cap)
        step = self.limit_events
        return [batch[i : i + step] for i in range(0, len(batch), step)]

    def _accepted(self, batch: Batch, body: bytes) -> None:
        c = self.counts
        c["sent"] += len(batch) - count_lines_in(batch)
        try:
            answer = json.loads(body)
            self.holds.answered(answer, time.time())
            c["accepted"] += int(answer["accepted"])
            c["rate_limited"] += int(answer["rate_limited"])
            c["dropped_queue_full"] += int(answer["dropped"])
            c["invalid"] += int(answer["invalid"])
            errors = answer.get("errors") or []
        except (ValueError, KeyError, TypeError):
            c["accepted"] += len(batch)
            self.error(f"unexpected 202 answer: {body[:200]!r}")
            return
        for e in errors:
            line = int(e.get("line", 0))
            text = (
                batch[line - 1][:200].decode("utf-8", "replace") if 0 < line <= len(batch) else ""
            )
            self.error(f"invalid line: {e.get('message')}: {text}")

    def waiting(self, batch: Batch, now: float) -> bool:
        """True (and the batch dropped as unavailable) while attempts are backing off."""
        if not self.backoff.waiting(now):
            return False
        self.counts["dropped_unavailable"] += len(batch) - count_lines_in(batch)
        return True

    def unavailable(self, batch: Batch, reason: str, now: float) -> None:
        """The sidecar could not be reached: the batch is dropped, attempts back off."""
        self.counts["dropped_unavailable"] += len(batch) - count_lines_in(batch)
        if not self.backoff.down:
            log.warning("events-cache sidecar unavailable: %s", reason)
            self.error(f"sidecar unavailable ({self.settings.target}): {reason}")
        self.backoff.failed(now)

    def reachable(self) -> None:
        if self.backoff.down:
            log.info("events-cache sidecar reachable again")
        self.backoff.succeeded()


def _limit(body: bytes) -> str:
    """The limit a 413 names; bytes when it names none (an older sidecar)."""
    try:
        limit = json.loads(body).get("limit")
    except (ValueError, AttributeError):
        return LIMIT_BYTES
    return limit if limit == LIMIT_EVENTS else LIMIT_BYTES


def _events_bound(body: bytes) -> int:
    """A 413's bound in events: its "max", else the one its message names; 0 if none."""
    try:
        doc = json.loads(body)
    except ValueError:
        return 0
    if not isinstance(doc, dict):
        return 0
    bound = doc.get("max")
    if type(bound) is int and bound > 0:
        return bound
    found = _EVENTS_BOUND.search(str(doc.get("message", "")))
    return int(found.group(1)) if found else 0


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")
