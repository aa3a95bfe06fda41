"""The per-pod budget of tagged events cached beyond their ids' rate limits
(`sidecar.capture.budget_per_minute`), counted in `events_cache_captured_total`.

Admission asks it only for a tagged event that a bucket refused: an event its bucket
lets through spends nothing, so the budget is what a test's events cost beyond the
limits, and the ingest's path for untagged events is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from daemon.core.entry import ParsedEvent
from daemon.core.limiter import Bucket
from daemon.core.model import Namespace
from daemon.metrics.plain import PlainCount

CAPTURE_WINDOW_S = 60.0


class CaptureBudget:
    """`per_minute` tagged events a minute, a refillable bucket like the ids' own. An
    event that both its lists (all, error) would refuse spends once."""

    __slots__ = ("_bucket", "_counts", "_interval", "_last", "per_minute")

    def __init__(self, per_minute: int, now: float, counts: Mapping[Namespace, PlainCount]) -> None:
        self.per_minute = per_minute
        self._bucket = Bucket(per_minute, now)
        self._interval = CAPTURE_WINDOW_S / per_minute if per_minute else CAPTURE_WINDOW_S
        self._counts = counts
        self._last: ParsedEvent | None = None  # the event that spent last

    def spend(self, event: ParsedEvent, now: float) -> bool:
        """Whether `event` (tagged, refused by a bucket) may be cached beyond it: True
        when it spent one of the budget now, or already had (for its other list)."""
        if event is self._last:
            return True
        if not self.per_minute or not self._bucket.allow(self.per_minute, self._interval, now):
            return False
        self._last = event
        self._counts[event.namespace].inc()
        return True
