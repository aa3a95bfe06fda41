"""Rate limiting: Jitsu Classic's refillable bucket per (namespace, id, collection).

Pure logic, no I/O: every method takes `now` (seconds, monotonic or wall) so the
original's own scenario runs on a fake clock. Memory stays bounded when ids are
unbounded: `sweep()` drops the buckets that would be full again. The fresh bucket that
replaces one never allows more than the dropped one would have (Jitsu's bucket, which
refills only when empty, can even let more than `size` through after partial use), so
forgetting idle ids only ever makes the limit stricter, never looser.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

LIMITED_WINDOW_S = 60  # last_minute_limited sums the last 60 one-second slots


class Bucket:
    """A refillable token bucket: `capacity` tokens, starts full.

    Like the original, it refills only when empty: by one token per
    `window / capacity` seconds elapsed since the last refill, capped at capacity.
    """

    __slots__ = ("last_refill", "tokens")

    def __init__(self, capacity: int, now: float) -> None:
        self.tokens = capacity
        self.last_refill = now

    def allow(self, capacity: int, refill_interval_s: float, now: float) -> bool:
        """Take one token if there is one (refilling first when empty)."""
        if self.tokens > 0:
            self.tokens -= 1
            return True
        refills = int((now - self.last_refill) / refill_interval_s)
        if refills <= 0:
            return False
        self.tokens = min(capacity, refills) - 1
        self.last_refill = now
        return True

    def is_empty(self, refill_interval_s: float, now: float) -> bool:
        """True when `allow` would refuse now; takes nothing."""
        return self.tokens <= 0 and int((now - self.last_refill) / refill_interval_s) <= 0

    def is_full(self, capacity: int, refill_interval_s: float, now: float) -> bool:
        """True when the bucket would hold `capacity` tokens after refilling."""
        if self.tokens >= capacity:
            return True
        refills = int((now - self.last_refill) / refill_interval_s)
        return self.tokens + refills >= capacity


class RateLimiters:
    """All buckets of one sidecar, keyed by whatever the caller uses (ns, id, collection)."""

    def __init__(self, capacity: int, window_s: float) -> None:
        self.capacity = capacity
        self.refill_interval_s = window_s / capacity
        self._buckets: dict[Hashable, Bucket] = {}

    def allow(self, key: Hashable, now: float) -> bool:
        """Whether one more event of `key` may be cached now."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(self.capacity, now)
        return bucket.allow(self.capacity, self.refill_interval_s, now)

    def is_empty(self, key: Hashable, now: float) -> bool:
        """Whether `allow(key, now)` would refuse, without taking a token (an id never
        seen has a full bucket)."""
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.is_empty(self.refill_interval_s, now)

    def empty_until(self, key: Hashable, now: float) -> float | None:
        """When `key`'s empty bucket takes an event again (its next refill, on the clock
        of `now`), or None when it would take one now. Buckets only refill as time
        passes, so no event taken meanwhile can bring that moment closer."""
        bucket = self._buckets.get(key)
        if bucket is None or not bucket.is_empty(self.refill_interval_s, now):
            return None
        return bucket.last_refill + self.refill_interval_s

    def sweep(self, now: float) -> int:
        """Forget buckets that are full again; returns how many were dropped."""
        cap, interval = self.capacity, self.refill_interval_s
        idle = [k for k, b in self._buckets.items() if b.is_full(cap, interval, now)]
        for key in idle:
            del self._buckets[key]
        return len(idle)

    def __len__(self) -> int:
        return len(self._buckets)


def last_minute_total(slots: Mapping[int, int], now_s: int) -> int:
    """Sum the per-second counts that fall within the last LIMITED_WINDOW_S seconds."""
    return sum(n for s, n in slots.items() if 0 <= now_s - s < LIMITED_WINDOW_S)


class LimitedCounter:
    """Counts limited events per key and second, until they are flushed to Redis.

    The sidecars share these counts through Redis, so `last_minute_limited` covers
    every pod; this holds only what this pod has not flushed yet.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[Hashable, int], int] = {}

    def add(self, key: Hashable, now: float, count: int = 1) -> None:
        """Count `count` limited events of `key` in the second `now` falls in."""
        slot = (key, int(now))
        self._pending[slot] = self._pending.get(slot, 0) + count

    def take(self) -> dict[tuple[Hashable, int], int]:
        """Hand over the pending counts and start afresh."""
        pending, self._pending = self._pending, {}
        return pending
