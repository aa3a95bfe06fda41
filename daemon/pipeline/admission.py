"""Admission: rate limit each event, encode and queue the ones that may be cached.

The hot path of the ingest, shared by every listener that feeds the cache. A
rate-limited event is counted and forgotten before anything is encoded or queued, so
it never touches Redis. Counters move once per request, not once per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from daemon.config.sidecar import CaptureSettings
from daemon.core.accounting import Outcome
from daemon.core.activity import RATE_LIMITED, RECEIVED, ActivityCounter
from daemon.core.atsource import AtSourceCounts, limited_entry
from daemon.core.capture import CaptureFinder
from daemon.core.entry import ParsedEvent, encode
from daemon.core.eventid import EventIdFinder
from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.core.model import Collection, DropReason, Namespace, Target
from daemon.core.redact import Redactor, Unredactable, unredactable
from daemon.core.unbuilt import is_one_object
from daemon.metrics import Metrics
from daemon.pipeline.capture import CaptureBudget
from daemon.pipeline.queue import EventQueue, QueuedEntry

_ALL, _ERROR = int(Target.ALL), int(Target.ERROR)  # plain ints on the hot path
_ERR = Collection.ERROR
ONE_LIMITED = Outcome(0, 1, 0)  # limited_outright's, shared: callers only read it
MALFORMED = "malformed"  # the error signature of a malformed entry that names no error


def _no_event_id(event: ParsedEvent) -> str:
    """No journey index: no event's own id is looked for."""
    return ""


@dataclass(slots=True)
class _Counts:
    """What one request did, summed per namespace, or per key (received, limited)."""

    received: dict[tuple[Namespace, str, Collection], int] = field(default_factory=dict)
    limited_all: dict[Namespace, int] = field(default_factory=dict)
    limited_error: dict[Namespace, int] = field(default_factory=dict)
    limited_keys: dict[tuple[Namespace, str, Collection], int] = field(default_factory=dict)
    malformed: int = 0


class Admission:
    """Rate limits events and queues the ones that may be cached."""

    def __init__(
        self,
        queue: EventQueue,
        limiters: RateLimiters,
        limited: LimitedCounter,
        metrics: Metrics,
        redact: Sequence[str] = (),
        event_ids: EventIdFinder | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        capture: CaptureBudget | None = None,
    ) -> None:
        self._queue = queue
        self._activity: ActivityCounter | None = None  # count_activity()
        self._limiters = limiters
        self._limited = limited
        self._metrics = metrics
        self._monotonic = monotonic
        self._wall = wall
        # server.cache.events.redact: None when empty, so the hot path pays one test
        self._redact = Redactor(redact) if redact else None
        # sidecar.journey.event_id_from: None when empty (no journey index), one test
        self._event_ids = event_ids if event_ids is not None and event_ids.on else None
        # sidecar.capture: the budget is asked only for a tagged event a bucket refused;
        # the finder is None when `from` is empty (the listeners then look for no tag)
        self._capture = capture or CaptureBudget(0, monotonic(), metrics.captured)
        self.capture_finder: CaptureFinder | None = None

    def capturing(self, settings: CaptureSettings) -> Admission:
        """This admission with `sidecar.capture`: its budget, and its rules for the
        listeners (`daemon.web.ingest`) to find tags with."""
        per_minute = settings.budget_per_minute
        self._capture = CaptureBudget(per_minute, self._monotonic(), self._metrics.captured)
        self.capture_finder = CaptureFinder(settings.from_) if settings.from_ else None
        return self

    def submit(self, events: Iterable[ParsedEvent], seen: dict[Any, int] | None = None) -> Outcome:
        """Limit, encode and queue `events`; update the counters once.

        The hot path of the ingest: targets are plain ints (IntFlag operators are
        Python-level calls), and limited counts are summed per key before they reach
        the shared counter. `seen`: see _record.
        """
        now, wall = self._monotonic(), self._wall()
        allow, put, spend = self._limiters.allow, self._queue.put, self._capture.spend
        redact, eid = self._redact, (self._event_id if self._event_ids else _no_event_id)
        all_, error_ = Collection.ALL, Collection.ERROR
        accepted = rate_limited = dropped = malformed = 0
        counts = _Counts()
        received, limited_keys = counts.received, counts.limited_keys
        limited_all, limited_error = counts.limited_all, counts.limited_error
        for event in events:
            ns, id_ = event.namespace, event.id
            key = (ns, id_, all_)
            received[key] = received.get(key, 0) + 1
            if allow(key, now) or (event.capture is not None and spend(event, now)):
                target = _ALL
            else:
                target = 0
                limited_keys[key] = limited_keys.get(key, 0) + 1
            if event.malformed is not None:
                malformed += 1
            if error := event.error or (MALFORMED if event.malformed else ""):  # is_error
                error_key = (ns, id_, error_)
                if allow(error_key, now) or (event.capture is not None and spend(event, now)):
                    target |= _ERROR
                else:
                    limited_keys[error_key] = limited_keys.get(error_key, 0) + 1
                    limited_error[ns] = limited_error.get(ns, 0) + 1
            if not target:
                rate_limited += 1
                limited_all[ns] = limited_all.get(ns, 0) + 1
                continue
            if redact is not None:
                self._redact_event(redact, event)
            if put(QueuedEntry(ns, id_, target, encode(event, wall), eid(event), error)):
                if target & _ALL:
                    accepted += 1
                else:
                    rate_limited += 1  # cached in the error list only
            else:
                dropped += 1
        counts.malformed = malformed
        outcome = Outcome(accepted, rate_limited, dropped)
        self._record(outcome, counts, wall, seen)
        return outcome

    def count_activity(self, counter: ActivityCounter) -> None:
        """Count each request's received and rate-limited events per id and minute in
        `counter` too (GET /api/v1/events/activity)."""
        self._activity = counter

    def submit_in_slices(
        self, events: Iterable[ParsedEvent], size: int
    ) -> Generator[None, None, Outcome]:
        """submit() `size` events at a time, yielding after each slice so that the caller
        can let the event loop run between them: a large request never holds it long."""
        pending = iter(events)
        return self.submit_slices(iter(lambda: list(islice(pending, size)), []))

    def submit_slices(
        self, slices: Iterable[Iterable[ParsedEvent]], seen: dict[Any, int] | None = None
    ) -> Generator[None, None, Outcome]:
        """submit() each slice, yielding after each: the slices bound the work between
        two turns of the event loop."""
        accepted = rate_limited = dropped = 0
        for chunk in slices:
            outcome = self.submit(chunk, seen)
            accepted += outcome.accepted
            rate_limited += outcome.rate_limited
            dropped += outcome.dropped
            yield
        return Outcome(accepted, rate_limited, dropped)

    def _event_id(self, event: ParsedEvent) -> str:
        """The event's own id, for the journey index (after redaction: as stored)."""
        assert self._event_ids is not None
        return self._event_ids.find(event.original_value(), event.success) or ""

    def _redact_event(self, redact: Redactor, event: ParsedEvent) -> None:
        """Mask the redact paths in the original and the result; what cannot be redacted
        (a malformed body: not JSON; JSON nested too deep to write back) is never stored
        as it came, but as a note saying why, counted."""
        if event.original:
            event.original = self._redacted(redact, event.original)
        if event.success:
            event.success = self._redacted(redact, event.success)
        if event.malformed:
            self._metrics.unredactable.inc()
            event.malformed = unredactable(event.malformed, "not JSON: paths cannot be found")

    def _redacted(self, redact: Redactor, text: str) -> str:
        try:
            return redact.redact_text(text)
        except Unredactable as e:
            self._metrics.unredactable.inc()
            return unredactable(text, str(e))

    def all_limited(self, ns: Namespace, id_: str) -> bool:
        """Whether the all-events list of `id_` is rate limited now (takes nothing). An
        event found so stays limited through the submit() that reads it, which took its
        time before: buckets only refill as time passes."""
        return self._limiters.is_empty((ns, id_, Collection.ALL), self._monotonic())

    def limited_outright(
        self, ns: Namespace, id_: str, body: bytes | None = None
    ) -> Outcome | None:
        """One event of `id_` counted as rate limited without being built, when the lists
        it could go to are limited now. None (nothing counted, no token taken) when
        either may have room for it.

        An event not read may be malformed, so it could go to the error list too: both
        lists must be limited. When only the error list has room, the event's `body`,
        when given, may still show that it is one valid JSON object (checked without
        building it), which goes to the `all` list alone. Either way it counts as
        received and rate limited in `all`; when both lists were limited and it was not
        read, whether it was malformed is unknown: it is counted neither in `malformed`
        nor in the error list's limited counts.
        """
        now, limiters = self._monotonic(), self._limiters
        all_key = (ns, id_, Collection.ALL)
        if not limiters.is_empty(all_key, now):
            return None
        if not limiters.is_empty((ns, id_, _ERR), now) and (
            body is None or not is_one_object(body)
        ):
            return None
        wall = self._wall()
        self._limited.add(all_key, wall)
        if self._activity is not None:
            self._activity.add(ns, id_, wall, RECEIVED)
            self._activity.add(ns, id_, wall, RATE_LIMITED)
        m = self._metrics
        m.received[ns].inc()
        m.rate_limited[ns, Collection.ALL].inc()
        return ONE_LIMITED

    def _record(
        self, outcome: Outcome, counts: _Counts, wall: float, seen: dict[Any, int] | None
    ) -> None:
        """Move the request's counts to the shared limited counter and the metrics;
        give `seen` (when not None) the request's (namespace, id, all) keys, for the
        answer's `limited`."""
        if seen is not None:
            seen.update(counts.received)
        add_limited = self._limited.add
        for key, n in counts.limited_keys.items():
            add_limited(key, wall, n)
        if self._activity is not None:
            self._activity.add_admitted(counts.received, counts.limited_keys, wall)
        m = self._metrics
        for (ns, _, _), n in counts.received.items():
            m.received[ns].inc(n)
        for ns, n in counts.limited_all.items():
            m.rate_limited[ns, Collection.ALL].inc(n)
        for ns, n in counts.limited_error.items():
            m.rate_limited[ns, Collection.ERROR].inc(n)
        if outcome.dropped:
            m.dropped[DropReason.QUEUE_FULL].inc(outcome.dropped)
        if counts.malformed:
            m.malformed.inc(counts.malformed)

    def count_at_source(self, counts: AtSourceCounts) -> None:
        """Count what clients held back (their count lines) as received and rate limited
        now, as submit() would have counted those events: an `all` count is events, an
        `error` count the error list's share of them."""
        wall, activity, m = self._wall(), self._activity, self._metrics
        for key, n in counts.items():
            ns, id_, collection = key
            self._limited.add(key, wall, n)
            m.rate_limited[ns, collection].inc(n)
            if collection is not Collection.ALL:
                continue
            m.received[ns].inc(n)
            m.limited_at_source[ns].inc(n)
            if activity is not None:
                activity.add(ns, id_, wall, RECEIVED, n)
                activity.add(ns, id_, wall, RATE_LIMITED, n)

    def limited_after(self, keys: Iterable[tuple[Namespace, str, Any]]) -> list[dict[str, Any]]:
        """The answer's `limited`: those of the request's ids whose all-events bucket is
        empty now, when it takes an event again, and whether the error bucket is empty
        too (then `until` is the sooner of the two)."""
        now, wall, out = self._monotonic(), self._wall(), []
        until_of = self._limiters.empty_until
        for ns, id_, _ in keys:
            until = until_of((ns, id_, Collection.ALL), now)
            if until is None:
                continue
            error_until = until_of((ns, id_, _ERR), now)
            if error_until is not None:
                until = min(until, error_until)
            out.append(limited_entry(ns, id_, error_until is not None, wall + until - now))
        return out
