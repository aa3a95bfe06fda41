"""Limits at the source on the sidecar's side, without a server: the count lines as the
NDJSON reader checks them, Admission's accounting of them, the answer's `limited`, and
the limiter's `empty_until` (daemon/core/atsource.py, daemon/pipeline/admission.py)."""

from __future__ import annotations

from typing import Any

import orjson

from daemon.core.activity import RATE_LIMITED, RECEIVED, ActivityCounter
from daemon.core.atsource import MAX_AT_SOURCE, count_line, rfc3339
from daemon.core.entry import ParsedEvent
from daemon.core.limiter import RateLimiters
from daemon.core.model import Collection, Namespace
from daemon.core.ndjson import iter_ndjson
from daemon.core.parse import LineReport
from daemon.pipeline.queue import EventQueue
from tests.test_admission import WALL, admission, sample

TOKEN = Namespace.TOKEN
GOOD = {"namespace": "token", "id": "k", "collection": "all", "limited_at_source": 3}


def test_a_count_line_is_its_key_and_count() -> None:
    assert count_line(GOOD) == ((TOKEN, "k", Collection.ALL), 3)
    error = {**GOOD, "namespace": "destination", "collection": "error", "limited_at_source": 1}
    assert count_line(error) == ((Namespace.DESTINATION, "k", Collection.ERROR), 1)
    assert count_line({**GOOD, "limited_at_source": MAX_AT_SOURCE}) == (
        (TOKEN, "k", Collection.ALL),
        MAX_AT_SOURCE,
    )


def test_any_other_count_line_is_invalid_with_a_reason() -> None:
    bad = {
        "zero": {**GOOD, "limited_at_source": 0},
        "over the bound": {**GOOD, "limited_at_source": MAX_AT_SOURCE + 1},
        "a boolean": {**GOOD, "limited_at_source": True},
        "a float": {**GOOD, "limited_at_source": 1.0},
        "a string": {**GOOD, "limited_at_source": "3"},
        "a collection": {**GOOD, "collection": "errors"},
        "a namespace": {**GOOD, "namespace": ["token"]},
        "an id": {**GOOD, "id": "a,b"},
        "a field more": {**GOOD, "original": {}},
        "a field less": {k: v for k, v in GOOD.items() if k != "collection"},
    }
    for why, doc in bad.items():
        assert isinstance(count_line(doc), str), why


def test_the_reader_sums_count_lines_apart_from_events() -> None:
    """Count lines give no event; valid ones are summed per key, invalid ones reported."""
    lines = [GOOD, {"namespace": "token", "id": "k", "original": {}}, GOOD, {**GOOD, "id": ""}]
    body = b"\n".join(orjson.dumps(line) for line in lines)
    report = LineReport()
    events = list(iter_ndjson(body, 1000, report))
    assert [(e.namespace, e.id) for e in events] == [(TOKEN, "k")]
    assert report.at_source == {(TOKEN, "k", Collection.ALL): 6}
    assert (report.invalid, [e.line for e in report.errors]) == (1, [4])


def test_counts_at_the_source_are_counted_as_submit_would() -> None:
    """An `all` count: received, rate limited, the limited counter, activity and the
    at-source metric; an `error` count: the error list's rate limited and counter only."""
    adm, limited, metrics = admission(EventQueue(100, 2))
    activity = ActivityCounter()
    adm.count_activity(activity)
    adm.count_at_source({(TOKEN, "k", Collection.ALL): 7, (TOKEN, "k", Collection.ERROR): 2})
    assert sample(metrics, "received", cache_namespace="token") == 7
    assert sample(metrics, "rate_limited", cache_namespace="token", collection="all") == 7
    assert sample(metrics, "rate_limited", cache_namespace="token", collection="error") == 2
    assert sample(metrics, "limited_at_source", cache_namespace="token") == 7
    second = int(WALL)
    assert limited.take() == {
        ((TOKEN, "k", Collection.ALL), second): 7,
        ((TOKEN, "k", Collection.ERROR), second): 2,
    }
    [counts] = activity.take().values()
    assert (counts[RECEIVED], counts[RATE_LIMITED]) == (7, 7)


def test_limited_names_the_requests_ids_whose_bucket_is_empty() -> None:
    """One event an hour per list: after a request, an id whose all bucket is spent is
    named until its next refill (an hour on from the request); an error-spent id names
    both lists; an id with room is not named."""
    adm, _, _ = admission(EventQueue(100, 2))
    seen: dict[Any, int] = {}
    adm.submit(
        [
            ParsedEvent(TOKEN, "a", original="{}"),
            ParsedEvent(TOKEN, "b", malformed="x", error="bad"),
            ParsedEvent(Namespace.DESTINATION, "d", original="{}", skip="no"),
        ],
        seen,
    )
    seen[TOKEN, "roomy", Collection.ALL] = 1
    entries = sorted(adm.limited_after(seen), key=lambda e: str(e["id"]))
    until = rfc3339(WALL + 3600)
    assert entries == [
        {"namespace": TOKEN, "id": "a", "collections": ["all"], "until": until},
        {"namespace": TOKEN, "id": "b", "collections": ["all", "error"], "until": until},
        {"namespace": "destination", "id": "d", "collections": ["all"], "until": until},
    ]


def test_empty_until_is_the_next_refill() -> None:
    limiters = RateLimiters(2, 10)  # one token every 5 s, refilled once empty
    assert limiters.empty_until("k", 0.0) is None  # never seen: full
    assert limiters.allow("k", 0.0) and limiters.allow("k", 1.0)
    assert limiters.empty_until("k", 1.0) == 5.0
    assert limiters.empty_until("k", 5.0) is None  # takes one again
    assert not limiters.allow("k", 4.9)


def test_rfc3339_is_utc_to_the_millisecond_rounded_down() -> None:
    assert rfc3339(1_700_000_000.2569) == "2023-11-14T22:13:20.256Z"
