"""daemon/core/stamp.py: uids and times stay right when threads share the caches."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from daemon.core import stamp
from daemon.core.stamp import new_uid, rfc3339


@contextmanager
def switching_often() -> Iterator[None]:
    """Let the interpreter switch threads every microsecond, so that a race shows."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def in_threads(count: int, work: Callable[[int], list[str]]) -> list[list[str]]:
    """Run `work(i)` in `count` threads started together; their results in order."""
    results: list[list[str]] = [[] for _ in range(count)]
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    with switching_often():
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return results


def test_uids_taken_by_many_threads_are_all_distinct_version_7_uuids() -> None:
    """The random pool is shared: each thread's uids use bits no other uid got, and
    each thread's uids still sort in the order it made them."""
    per_thread = 20 * stamp._RandomPool.SIZE // 6  # each thread empties the pool 20 times
    results = in_threads(4, lambda _: [new_uid() for _ in range(per_thread)])
    uids = [u for r in results for u in r]
    assert len(set(uids)) == len(uids) == 4 * per_thread
    assert all(uuid.UUID(u).version == 7 and str(uuid.UUID(u)) == u for u in uids)
    assert all(r == sorted(r) for r in results)
    # the random part differs between consecutive uids (the pool's pieces are not reused)
    assert len({u[-12:] for u in uids}) == len(uids)


def test_uids_sort_by_the_time_they_were_made_and_carry_it() -> None:
    """Made apart in time, uids sort in that order (as text and as numbers), and
    uid_time gives the millisecond back; v7_uid tells v7 uids from others."""
    made = []
    for _ in range(5):
        before = time.time()
        uid = new_uid()
        made.append(uid)
        assert before - 0.05 <= stamp.uid_time(uid) <= time.time() + 0.05
        time.sleep(0.002)
    assert made == sorted(made) == sorted(made, key=lambda u: uuid.UUID(u).int)
    assert len({u[:13] for u in made}) == len(made)  # a different millisecond each
    assert stamp.v7_uid(made[0].upper()) == made[0]
    assert stamp.v7_uid(str(uuid.uuid4())) is None
    assert stamp.v7_uid("not a uid") is None


def test_times_formatted_by_many_threads_are_each_their_own() -> None:
    """The clock's cache is shared: a thread never gets another time's text, or its
    second with another's fraction, whatever the others format meanwhile."""
    base = 1_700_000_000.0

    def work(i: int) -> list[str]:
        # Each thread its own times, crossing seconds often (the date part is cached).
        return [rfc3339(base + n * 0.25 + i * 1e-6) for n in range(20_000)]

    for i, texts in enumerate(in_threads(8, work)):
        for n, text in enumerate(texts):
            t = base + n * 0.25 + i * 1e-6
            second = int(t)
            expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            assert text == f"{expected}.{int((t - second) * 1_000_000):06d}Z"


def test_the_clock_formats_in_jitsus_layout_with_or_without_its_cache() -> None:
    """The same time twice, a new fraction, a new second: the text each time."""
    assert rfc3339(0.5) == rfc3339(0.5) == "1970-01-01T00:00:00.500000Z"
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250000Z"
    assert rfc3339(86_400.75) == "1970-01-02T00:00:00.750000Z"
    assert rfc3339(0.5) == "1970-01-01T00:00:00.500000Z"
