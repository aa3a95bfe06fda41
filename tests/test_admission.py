"""Admission.submit (daemon/pipeline/admission.py), the ingest's hot path, on its own: a
real EventQueue and RateLimiters, a fixed clock, the counts read from the metrics."""

from __future__ import annotations

import orjson

from daemon.core.accounting import Outcome
from daemon.core.entry import ParsedEvent
from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.core.model import Collection, Namespace, Target
from daemon.core.redact import REDACTED_VALUE
from daemon.core.stamp import rfc3339
from daemon.metrics import Metrics
from daemon.pipeline.admission import Admission
from daemon.pipeline.queue import EventQueue, QueuedEntry

TOKEN, DEST = Namespace.TOKEN, Namespace.DESTINATION
WALL = 1_700_000_000.25  # the entries' time of caching
ALL, ERROR = int(Target.ALL), int(Target.ERROR)


def admission(
    queue: EventQueue, size: int = 1, redact: tuple[str, ...] = ()
) -> tuple[Admission, LimitedCounter, Metrics]:
    """`size` events per list and hour (no refill within a test), on a clock that stands."""
    limited, metrics = LimitedCounter(), Metrics("test")
    adm = Admission(
        queue,
        RateLimiters(size, 3600),
        limited,
        metrics,
        redact,
        monotonic=lambda: 100.0,
        wall=lambda: WALL,
    )
    return adm, limited, metrics


def queued(queue: EventQueue) -> list[QueuedEntry]:
    """Every entry the queue holds, shard by shard (taken: the queue is left empty)."""
    return [e for shard in range(queue.shards) for e in queue.take(shard, 1000, 1 << 30)[0]]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A counter's value from the registry (it must exist)."""
    value = metrics.registry.get_sample_value(f"events_cache_{name}_total", labels)
    assert value is not None, (name, labels)
    return value


def test_events_within_the_limit_are_queued_for_the_all_list_the_rest_counted() -> None:
    """Two per list: the third event of an id is limited, another id has its own bucket;
    the limited ones are summed per key and second for the shared counter."""
    queue = EventQueue(100, 2)
    adm, limited, metrics = admission(queue, size=2)
    events = [ParsedEvent(TOKEN, "a", original=f'{{"n":{n}}}') for n in range(3)]
    events.append(ParsedEvent(DEST, "d", original="{}", success='{"ok":1}'))
    assert adm.submit(events) == Outcome(accepted=3, rate_limited=1, dropped=0)
    entries = queued(queue)
    assert sorted((e.namespace, e.id, e.target) for e in entries) == [
        (DEST, "d", ALL),
        (TOKEN, "a", ALL),
        (TOKEN, "a", ALL),
    ]
    # Stored as Jitsu stores them: the original and the result as JSON text.
    originals = [orjson.loads(e.data)["original"] for e in entries if e.id == "a"]
    assert originals == ['{"n":0}', '{"n":1}']
    stored = orjson.loads(next(e.data for e in entries if e.id == "d"))
    assert stored["success"] == '{"ok":1}' and stored["timestamp"] == rfc3339(WALL)
    assert limited.take() == {((TOKEN, "a", Collection.ALL), int(WALL)): 1}
    assert sample(metrics, "received", cache_namespace="token") == 3
    assert sample(metrics, "received", cache_namespace="destination") == 1
    assert sample(metrics, "rate_limited", cache_namespace="token", collection="all") == 1
    assert sample(metrics, "rate_limited", cache_namespace="token", collection="error") == 0


def test_errors_and_malformed_events_go_to_the_error_list_which_has_its_own_bucket() -> None:
    """One per list: an error goes to both lists; the next one of the id to neither; an
    error after a success to the error list only (counted as rate limited in `all`
    by the writer, which counts what it writes); a malformed event is an error."""
    queue = EventQueue(100, 1)
    adm, limited, metrics = admission(queue, size=1)
    events = [
        ParsedEvent(TOKEN, "x", original="{}", error="failed"),
        ParsedEvent(TOKEN, "x", original="{}", error="failed again"),
        ParsedEvent(TOKEN, "y", original="{}"),
        ParsedEvent(TOKEN, "y", original="{}", error="failed"),
        ParsedEvent(TOKEN, "z", malformed="{not json"),
    ]
    assert adm.submit(events) == Outcome(accepted=3, rate_limited=2, dropped=0)
    assert [(e.id, e.target) for e in queued(queue)] == [
        ("x", ALL | ERROR),
        ("y", ALL),
        ("y", ERROR),
        ("z", ALL | ERROR),
    ]
    second = int(WALL)
    assert limited.take() == {
        ((TOKEN, "x", Collection.ALL), second): 1,
        ((TOKEN, "x", Collection.ERROR), second): 1,
        ((TOKEN, "y", Collection.ALL), second): 1,
    }
    assert sample(metrics, "received", cache_namespace="token") == 5
    # Only the event that went nowhere is counted here; y's error is the writer's to count.
    assert sample(metrics, "rate_limited", cache_namespace="token", collection="all") == 1
    assert sample(metrics, "rate_limited", cache_namespace="token", collection="error") == 1
    assert sample(metrics, "malformed") == 1


def test_a_full_queue_drops_what_may_be_cached_and_counts_it() -> None:
    """Entries past the queue's capacity are dropped (queue_full), not limited: their
    tokens are taken all the same, and a limited event is never queued, full or not."""
    queue = EventQueue(2, 1)
    adm, _, metrics = admission(queue, size=4)
    events = [ParsedEvent(TOKEN, "a", original="{}") for _ in range(5)]
    assert adm.submit(events) == Outcome(accepted=2, rate_limited=1, dropped=2)
    assert queue.depth == 2 and len(queued(queue)) == 2
    assert sample(metrics, "dropped", reason="queue_full") == 2
    assert sample(metrics, "received", cache_namespace="token") == 5
    # An error that finds the queue full is dropped, whichever lists it was meant for.
    error_only = [ParsedEvent(TOKEN, "a", original="{}", error="e")]
    assert adm.submit(error_only) == Outcome(accepted=0, rate_limited=0, dropped=1)
    assert sample(metrics, "dropped", reason="queue_full") == 3


def test_the_queue_bound_in_bytes_drops_an_entry_that_would_pass_it() -> None:
    """The queue holds at most capacity_bytes of encoded entries: a large entry that
    would pass the bound is dropped, a small one after it still fits."""
    small = ParsedEvent(TOKEN, "a", original='{"n":1}')
    probe = EventQueue(10, 1)
    admission(probe)[0].submit([small])
    one = len(queued(probe)[0].data)

    queue = EventQueue(100, 1, capacity_bytes=2 * one + 10)
    adm, _, metrics = admission(queue, size=10)
    large = ParsedEvent(TOKEN, "a", original='{"pad":"' + "x" * 100 + '"}')
    events = [ParsedEvent(TOKEN, "a", original='{"n":1}'), large]
    events.append(ParsedEvent(TOKEN, "a", original='{"n":2}'))
    assert adm.submit(events) == Outcome(accepted=2, rate_limited=0, dropped=1)
    assert queue.bytes == 2 * one <= queue.capacity_bytes
    assert sample(metrics, "dropped", reason="queue_full") == 1


def test_redaction_masks_the_configured_paths_before_the_entry_is_encoded() -> None:
    """With redact paths, the original and the result are masked; a malformed body
    cannot be searched, so a note is stored in its place and counted."""
    queue = EventQueue(100, 1)
    adm, _, metrics = admission(queue, size=10, redact=("user.email",))
    events = [
        ParsedEvent(TOKEN, "a", original='{"user":{"email":"a@b.c","n":1}}'),
        ParsedEvent(DEST, "d", original="{}", success='{"user":{"email":"a@b.c"}}'),
        ParsedEvent(TOKEN, "a", malformed='{"user":{"email":"a@b.c"'),
    ]
    assert adm.submit(events).accepted == 3
    stored = [orjson.loads(e.data) for e in queued(queue)]
    masked = {"user": {"email": REDACTED_VALUE, "n": 1}}
    assert orjson.loads(stored[0]["original"]) == masked
    assert orjson.loads(stored[1]["success"]) == {"user": {"email": REDACTED_VALUE}}
    assert "a@b.c" not in stored[2]["malformed"]
    assert sample(metrics, "unredactable") == 1


def test_submit_in_slices_yields_between_slices_and_sums_their_outcomes() -> None:
    """Ten events, four at a time: three slices, one yield after each, one outcome."""
    queue = EventQueue(100, 1)
    adm, _, _ = admission(queue, size=8)
    work = adm.submit_in_slices((ParsedEvent(TOKEN, "a", original="{}") for _ in range(10)), 4)
    yields = 0
    try:
        while True:
            next(work)
            yields += 1
    except StopIteration as done:
        assert done.value == Outcome(accepted=8, rate_limited=2, dropped=0)
    assert yields == 3 and queue.depth == 8
