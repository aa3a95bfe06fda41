"""The rate limiter on a fake clock, including Jitsu Classic's own scenario."""

from __future__ import annotations

from daemon.core.limiter import LimitedCounter, RateLimiters, last_minute_total


class Scenario:
    """A limiter plus the per-second limited counts, as the sidecar keeps them."""

    def __init__(self, capacity: int, window_s: int) -> None:
        self.limiters = RateLimiters(capacity, window_s)
        self.counter = LimitedCounter()
        self.slots: dict[int, int] = {}
        self.now = 1_000_000.0

    def send(self, n: int, key: object = "id") -> tuple[int, int]:
        allowed = limited = 0
        for _ in range(n):
            if self.limiters.allow(key, self.now):
                allowed += 1
            else:
                limited += 1
                self.counter.add(key, self.now)
        for (_, second), count in self.counter.take().items():
            self.slots[second] = self.slots.get(second, 0) + count
        return allowed, limited

    def last_minute_limited(self) -> int:
        return last_minute_total(self.slots, int(self.now))


def test_the_originals_own_scenario() -> None:
    s = Scenario(capacity=60, window_s=60)
    assert s.send(60) == (60, 0)
    assert s.send(60) == (0, 60)
    assert s.last_minute_limited() == 60
    s.now += 1
    assert s.send(3) == (1, 2)
    s.now += 59
    assert s.last_minute_limited() == 2
    s.now += 1
    assert s.last_minute_limited() == 0


def test_refill_is_one_token_per_window_over_size() -> None:
    s = Scenario(capacity=10, window_s=60)  # one token per 6 s
    assert s.send(10) == (10, 0)
    s.now += 5.9
    assert s.send(1) == (0, 1)
    s.now += 0.1
    assert s.send(2) == (1, 1)
    s.now += 18  # three more tokens
    assert s.send(5) == (3, 2)


def test_refill_is_capped_at_capacity() -> None:
    s = Scenario(capacity=5, window_s=5)
    s.send(5)
    s.now += 3600
    assert s.send(10) == (5, 5)


def test_buckets_are_separate_per_key() -> None:
    s = Scenario(capacity=3, window_s=60)
    assert s.send(5, key=("token", "a", "all")) == (3, 2)
    assert s.send(5, key=("token", "a", "error")) == (3, 2)
    assert s.send(5, key=("token", "b", "all")) == (3, 2)


def test_sweep_forgets_only_buckets_that_are_full_again() -> None:
    limiters = RateLimiters(capacity=10, window_s=10)
    now = 100.0
    for _ in range(10):
        limiters.allow("busy", now)
    limiters.allow("idle", now)
    assert len(limiters) == 2
    assert limiters.sweep(now) == 0
    now += 1.5  # "idle" has refilled its one token; "busy" is still empty
    assert limiters.sweep(now) == 1
    assert len(limiters) == 1
    now += 10
    assert limiters.sweep(now) == 1
    assert len(limiters) == 0


def test_memory_stays_bounded_with_unbounded_ids() -> None:
    limiters = RateLimiters(capacity=100, window_s=60)
    now = 0.0
    for second in range(100):
        for i in range(1000):
            limiters.allow(f"id-{second}-{i}", now)
        now += 1
        limiters.sweep(now)
        assert len(limiters) <= 1000


def test_limited_counts_outside_the_minute_do_not_count() -> None:
    slots = {100: 5, 130: 7, 159: 1, 160: 100}
    assert last_minute_total(slots, 159) == 13
    assert last_minute_total(slots, 160) == 108
    assert last_minute_total(slots, 219) == 100
    assert last_minute_total(slots, 220) == 0


def test_is_empty_says_what_allow_would_answer_and_takes_nothing() -> None:
    limiters, probe = RateLimiters(3, 3), RateLimiters(3, 3)
    assert not limiters.is_empty("id", 0.0) and len(limiters) == 0  # unseen: full, not created
    now = 1_000.0
    for step in (0, 0, 0, 0, 0.5, 0.999, 1.0, 0, 0, 0.25, 2.5, 0, 0, 0, 7, 0, 0, 0, 0):
        now += step
        empty = limiters.is_empty("id", now)
        assert limiters.is_empty("id", now) == empty  # asking twice takes nothing either
        assert limiters.allow("id", now) is not empty
        probe.allow("id", now)
        assert limiters.is_empty("id", now) == probe.is_empty("id", now)
