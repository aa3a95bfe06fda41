"""The in-memory activity counts (pure): cells per (namespace, id, minute), the cap and
what it loses, a failed flush's cells taken back; and the minutes of an answer."""

from __future__ import annotations

from daemon.core.activity import CACHED, ERRORS, RATE_LIMITED, RECEIVED, ActivityCounter
from daemon.core.model import Collection, Namespace
from daemon.query.activity import minute_start

TOKEN, ALL, ERROR = Namespace.TOKEN, Collection.ALL, Collection.ERROR


def test_a_request_and_a_batch_are_counted_per_id_and_minute() -> None:
    counter = ActivityCounter()
    received = {(TOKEN, "a", ALL): 5, (TOKEN, "b", ALL): 1}
    # the errors-only list's limited counts are not the id's rate limited events
    limited = {(TOKEN, "a", ALL): 2, (TOKEN, "a", ERROR): 3}
    counter.add_admitted(received, limited, 119.9)
    counter.add_cached({(TOKEN, "a"): ([b"x"] * 3, [b"e"]), (TOKEN, "b"): ([], [b"e"])}, 120.0)
    assert counter.take() == {
        (TOKEN, "a", 1): [5, 0, 0, 2],
        (TOKEN, "b", 1): [1, 0, 0, 0],
        (TOKEN, "a", 2): [0, 3, 1, 0],  # the next minute
        (TOKEN, "b", 2): [0, 0, 1, 0],
    }
    assert counter.take() == {} and counter.take_lost() == 0


def test_cells_past_the_cap_are_lost_and_counted() -> None:
    counter = ActivityCounter(cap=2)
    for id_ in "abc":
        counter.add(TOKEN, id_, 60.0, RECEIVED, 4)
    counter.add(TOKEN, "a", 60.0, CACHED, 1)  # a cell held takes more counts
    counter.add(TOKEN, "c", 60.0, ERRORS, 1)
    assert len(counter) == 2 and counter.take_lost() == 5
    assert counter.take_lost() == 0  # taken once
    cells = counter.take()
    assert cells == {(TOKEN, "a", 1): [4, 1, 0, 0], (TOKEN, "b", 1): [4, 0, 0, 0]}


def test_a_failed_flush_is_taken_back_within_the_cap() -> None:
    counter = ActivityCounter(cap=2)
    counter.add(TOKEN, "a", 60.0, RECEIVED)
    failed = counter.take()
    counter.add(TOKEN, "a", 60.0, RATE_LIMITED)  # counted meanwhile
    counter.add(TOKEN, "b", 60.0, RECEIVED)
    counter.restore(failed | {(TOKEN, "c", 1): [1, 1, 0, 0]})
    assert counter.take() == {(TOKEN, "a", 1): [1, 0, 0, 1], (TOKEN, "b", 1): [1, 0, 0, 0]}
    assert counter.take_lost() == 2  # c's cell did not fit


def test_minutes_are_rfc3339_utc_starts() -> None:
    assert minute_start(0) == "1970-01-01T00:00:00Z"
    assert minute_start(29_443_201) == "2025-12-24T16:01:00Z"
