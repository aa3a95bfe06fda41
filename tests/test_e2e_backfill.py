"""The live tail's backfill and resume end to end: real daemons sharing one Redis.

`last=N` and `since=` send cached events oldest first, then follow; a reconnect with
`Last-Event-ID` resumes after that uid with neither a gap nor a duplicate while events
keep arriving on another pod; bad parameters are 400s; an anchor that is not a
time-ordered uid is said to be unknown.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from tests.support.daemon import ADMIN_TOKEN
from tests.support.scrape import list_key as key
from tests.support.scrape import metric_sum, settle
from tests.support.sse import Watcher, activate

pytestmark = pytest.mark.e2e

STREAM = "/api/v1/events/stream"
CACHE = "/api/v1/events/cache"
ROOMY = {"server": {"cache": {"events": {"size": 1000, "time_window_sec": 3600}}}}


def _n(data: dict[str, Any]) -> int:
    return int(data["event"]["original"]["n"])


def test_last_n_sends_the_newest_n_of_every_id_oldest_first_then_follows(
    start_daemon: Any,
) -> None:
    daemon = start_daemon(ROOMY)
    for n in range(10):
        daemon.post_token("ab"[n % 2], json.dumps({"n": n}))  # two ids, interleaved
    settle(daemon)
    watcher = Watcher(daemon.api_port, "namespace=token&last=4").start()
    backfill = watcher.take(4)
    assert [kind for _, kind, _ in backfill] == ["entry"] * 4
    assert [_n(d) for _, _, d in backfill] == [6, 7, 8, 9]
    assert [d["id"] for _, _, d in backfill] == ["a", "b", "a", "b"]
    uids = [d["event"]["uid"] for _, _, d in backfill]
    assert all(uuid.UUID(u).version == 7 for u in uids) and uids == sorted(uids)
    daemon.post_token("a", json.dumps({"n": 10}))
    ((_, kind, data),) = watcher.take(1)
    assert (kind, _n(data)) == ("entry", 10)


def test_last_n_of_some_ids_and_of_the_errors_only(start_daemon: Any) -> None:
    daemon = start_daemon(ROOMY)
    lines = [
        {"namespace": "destination", "id": f"d{n % 3}", "original": {"n": n}, "error": f"e{n}"}
        if n % 2
        else {"namespace": "destination", "id": f"d{n % 3}", "original": {"n": n}, "success": {}}
        for n in range(12)
    ]
    for line in lines:  # one request each: each its own uid, in this order
        daemon.post_ndjson([line])
    settle(daemon)
    watcher = Watcher(daemon.api_port, "namespace=destination&ids=d0,d1&status=error&last=3")
    backfill = watcher.start().take(3)
    # errors (odd n) of d0 (n % 3 == 0) and d1: 1, 3, 7, 9; the newest three, oldest first
    assert [_n(d) for _, _, d in backfill] == [3, 7, 9]
    assert {d["collection"] for _, _, d in backfill} == {"error"}


def test_since_sends_what_was_cached_since_then_oldest_first(start_daemon: Any) -> None:
    daemon = start_daemon(ROOMY)
    for n in range(3):
        daemon.post_token("shop", json.dumps({"n": n}))
    settle(daemon)
    newest = daemon.api(CACHE, {"namespace": "token", "ids": "shop", "limit": "1"}).json
    since = newest["events"][0]["timestamp"]  # the time n=2 was cached
    for n in range(3, 5):
        daemon.post_token("shop", json.dumps({"n": n}))
    settle(daemon)
    watcher = Watcher(daemon.api_port, f"namespace=token&since={since}").start()
    assert [_n(d) for _, _, d in watcher.take(3)] == [2, 3, 4]
    daemon.post_token("shop", json.dumps({"n": 5}))
    assert [_n(d) for _, _, d in watcher.take(1)] == [5]


def test_resume_with_last_event_id_loses_and_repeats_nothing_across_pods(
    start_daemon: Any,
) -> None:
    """Events keep arriving on one pod while a reader of another reconnects: what it got
    before its last uid and what it gets after are every event once, in order."""
    roomier = {"server": {"cache": {"events": {"size": 10_000, "time_window_sec": 3600}}}}
    writer, reader = start_daemon(roomier), start_daemon(roomier)
    first = Watcher(reader.api_port, "namespace=token&ids=feed,warm-up").start()
    activate(writer, first)
    stop, sent = threading.Event(), [0]

    def send() -> None:
        while not stop.is_set() and sent[0] < 9000:  # none rate limited
            writer.post_token("feed", json.dumps({"n": sent[0]}))
            sent[0] += 1

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = [d for _, _, d in first.take(30) if d["id"] == "feed"]
    first.close()
    before = [_n(d) for d in got]
    assert before == list(range(before[0], before[0] + len(before)))
    again = Watcher(
        reader.api_port,
        "namespace=token&ids=feed",
        headers={"Last-Event-ID": got[-1]["event"]["uid"]},
    ).start()
    resumed_at = sent[0]
    after: list[int] = []
    while len(after) < 20 or sent[0] < resumed_at + 50:  # the sender goes on meanwhile
        after += [_n(d) for _, _, d in again.take(1)]
    stop.set()
    sender.join()
    last = sent[0] - 1
    while after[-1] < last:
        after += [_n(d) for _, _, d in again.take(1)]
    assert after == list(range(before[-1] + 1, last + 1))
    assert after[0] < resumed_at, "the reconnect began with a backfill"


def test_a_last_event_id_that_is_not_time_ordered_is_said_to_be_unknown(
    start_daemon: Any,
) -> None:
    daemon = start_daemon(ROOMY)
    daemon.post_token("shop", json.dumps({"n": 0}))
    settle(daemon)
    old = str(uuid.uuid4())
    watcher = Watcher(daemon.api_port, "namespace=token&last=1", headers={"Last-Event-ID": old})
    (gap, entry) = watcher.start().take(2)
    assert gap[1] == "gap" and gap[2]["missed"] is None
    assert "version 7" in gap[2]["reason"]
    assert entry[1] == "entry" and _n(entry[2]) == 0  # last=1 still holds


def test_a_v7_last_event_id_replaces_last_and_since(start_daemon: Any) -> None:
    daemon = start_daemon(ROOMY)
    for n in range(4):
        daemon.post_token("shop", json.dumps({"n": n}))
    settle(daemon)
    events = daemon.api(CACHE, {"namespace": "token", "ids": "shop"}).json["events"]
    anchor = next(e["uid"] for e in events if e["original"] == {"n": 1})
    watcher = Watcher(daemon.api_port, "namespace=token&last=4", headers={"Last-Event-ID": anchor})
    assert [_n(d) for _, _, d in watcher.start().take(2)] == [2, 3]
    daemon.post_token("shop", json.dumps({"n": 4}))
    assert [_n(d) for _, _, d in watcher.take(1)] == [4]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"last": "-1"}, "last must be >= 0"),
        ({"last": "ten"}, "last must be int"),
        ({"since": "yesterday"}, "since must be RFC 3339"),
        ({"since": "2024-05-01T12:00:00"}, "since must be RFC 3339"),
        ({"last": "3", "since": "2024-05-01T12:00:00Z"}, "either last"),
        ({"namespace": "nope", "last": "3"}, "namespace must be"),
    ],
)
def test_bad_backfill_parameters_are_400_with_a_message(
    start_daemon: Any, params: dict[str, str], message: str
) -> None:
    daemon = start_daemon()
    reply = daemon.api(STREAM, {"namespace": "token", **params})
    assert reply.status == 400 and message in reply.json["message"], reply.json


def test_entries_with_old_random_uids_take_their_place_by_time(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """Entries cached before uids were time-ordered (version 4) are backfilled in the
    order of their timestamps among the new ones."""
    daemon = start_daemon(ROOMY)
    old_time = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    old = {"original": '{"n": 0}', "timestamp": old_time, "uid": str(uuid.uuid4())}
    redis_client.lpush(key("token", "shop"), json.dumps(old))
    for n in (1, 2):
        daemon.post_token("shop", json.dumps({"n": n}))
    settle(daemon)
    watcher = Watcher(daemon.api_port, "namespace=token&ids=shop&last=3").start()
    backfill = [d for _, _, d in watcher.take(3)]
    assert [_n(d) for d in backfill] == [0, 1, 2]
    assert [uuid.UUID(d["event"]["uid"]).version for d in backfill] == [4, 7, 7]


def test_a_backfill_cut_by_the_answers_bound_says_so(start_daemon: Any) -> None:
    daemon = start_daemon({**ROOMY, "sidecar": {"api": {"max_response_events": 3}}})
    for n in range(5):
        daemon.post_token("shop", json.dumps({"n": n}))
    settle(daemon)
    watcher = Watcher(daemon.api_port, "namespace=token&since=2020-01-01T00:00:00Z").start()
    *entries, gap = watcher.take(4)
    assert [kind for _, kind, _ in entries] == ["entry"] * 3
    assert [_n(d) for _, _, d in entries] == [2, 3, 4]  # the newest that fit, oldest first
    assert gap[1] == "gap" and gap[2]["missed"] is None and "cut" in gap[2]["reason"]


def test_last_n_of_every_id_reads_the_n_most_recently_written_ids(start_daemon: Any) -> None:
    daemon = start_daemon(ROOMY)
    for n in range(6):
        daemon.post_token(f"k{n}", json.dumps({"n": n}))
        settle(daemon)  # each id written after the one before
    daemon.post_token("k0", json.dumps({"n": 6}))  # k0 is again the most recent
    settle(daemon)
    watcher = Watcher(daemon.api_port, "namespace=token&last=3").start()
    assert [(d["id"], _n(d)) for _, _, d in watcher.take(3)] == [
        ("k4", 4),
        ("k5", 5),
        ("k0", 6),
    ]


def test_since_over_every_id_reads_only_the_ids_written_since_then(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """The id index says which ids were written since then: an id last written long
    before is not read, whatever its entries say (here: one stored by hand, its
    timestamp recent, its index entry an hour old)."""
    daemon = start_daemon(ROOMY)
    now = datetime.now(UTC)
    stale = {"original": '{"n": 0}', "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    redis_client.lpush(key("token", "stale"), json.dumps({**stale, "uid": str(uuid.uuid4())}))
    redis_client.zadd("events_cache:index:token", {"stale": now.timestamp() - 3600})
    for n in (1, 2):
        daemon.post_token("fresh", json.dumps({"n": n}))
    settle(daemon)
    since = (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    watcher = Watcher(daemon.api_port, f"namespace=token&since={since}").start()
    assert [(d["id"], _n(d)) for _, _, d in watcher.take(2)] == [("fresh", 1), ("fresh", 2)]
    daemon.post_token("fresh", json.dumps({"n": 3}))
    assert [_n(d) for _, _, d in watcher.take(1)] == [3]  # nothing of "stale" came between


def test_a_reader_gone_before_the_backfill_is_sent_is_no_error(start_daemon: Any) -> None:
    """A page that asks for a backfill and leaves at once (the viewer's overview, left for
    an id within a second): the stream ends quietly, not as a 500 with a traceback."""
    daemon = start_daemon()
    daemon.post_ndjson([{"namespace": "token", "id": "k", "original": {"n": 1}}])
    settle(daemon)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", daemon.api_port)) as s:
            s.sendall(
                f"GET {STREAM}?namespace=token&last=5 HTTP/1.1\r\nHost: x\r\n"
                f"X-Admin-Token: {ADMIN_TOKEN}\r\n\r\n".encode()
            )
    route = f'route="{STREAM}"'

    def answered() -> float:
        return metric_sum(
            daemon.metrics(), "events_cache_http_request_duration_seconds_count", route
        )

    deadline = time.monotonic() + 10
    while answered() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    samples = daemon.metrics()
    name = "events_cache_http_request_duration_seconds_count"
    assert metric_sum(samples, name, route) == 3
    assert metric_sum(samples, name, route, 'status="500"') == 0
