"""One event's journey end to end: the API key's entries and every destination's outcome,
found from any pod of two on one Redis, through the journey index the writers keep."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from daemon.store.journey import (
    JOURNEY_BUCKET_S,
    JOURNEY_SHARDS,
    MAX_JOURNEY_LISTS,
    journey_shard,
)
from tests.support.scrape import settle

pytestmark = pytest.mark.e2e

JOURNEY = "/api/v1/events/journey"
NO_REFILL = {"server": {"cache": {"events": {"time_window_sec": 3600}}}}


def journey(daemon: Any, event_id: str) -> tuple[int, Any]:
    reply = daemon.api(JOURNEY, {"event_id": event_id})
    return reply.status, reply.json


def destination(id_: str, original: dict[str, Any], **outcome: Any) -> dict[str, Any]:
    return {"namespace": "destination", "id": id_, "original": original, **outcome}


def test_journey_across_two_pods_with_a_success_an_error_and_a_skip(start_daemon: Any) -> None:
    first, second = start_daemon(NO_REFILL), start_daemon(NO_REFILL)
    event = {"event_type": "purchase", "eventn_ctx": {"event_id": "ev-1"}, "revenue": 9}
    other = {"event_type": "pageview", "eventn_ctx": {"event_id": "ev-2"}}
    assert first.post_token("shop", json.dumps([event, other])).status == 202
    lines = [
        destination("pg", event, success={"table": "events", "record": []}),
        destination("bq", event, error='pq: column "revenue" is of type numeric'),
        destination("pg", other, success={"table": "events", "record": []}),
    ]
    assert second.post_ndjson(lines).status == 202
    assert first.post_ndjson([destination("hook", event, skip="filtered out")]).status == 202
    settle(first)
    settle(second)

    for daemon in (first, second):  # any pod answers for all
        status, body = journey(daemon, "ev-1")
        assert status == 200, body
        assert body["event_id"] == "ev-1"
        assert [e["original"]["event_type"] for e in body["received"]] == ["purchase"]
        assert body["received"][0]["token_id"] == "shop"
        outcomes = [(d["destination_id"], d["status"]) for d in body["destinations"]]
        assert outcomes == [("bq", "error"), ("hook", "skip"), ("pg", "success")]
        by_id = {d["destination_id"]: d["event"] for d in body["destinations"]}
        assert by_id["bq"]["error"].startswith("pq: column")
        assert by_id["hook"]["skip"] == "filtered out"
        assert by_id["pg"]["success"]["table"] == "events"
        assert all(d["event"]["original"]["revenue"] == 9 for d in body["destinations"])
    status, body = journey(second, "ev-2")
    assert status == 200
    assert [d["destination_id"] for d in body["destinations"]] == ["pg"]
    assert body["received"][0]["original"]["event_type"] == "pageview"


def test_the_flattened_id_a_record_field_and_the_other_default_rules(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    flat = {"event_type": "signup", "eventn_ctx_event_id": "flat-7"}
    record = [{"field": "eventn_ctx_event_id", "type": "text", "value": "rec-9"}]
    lines = [
        destination("pg", flat, success={"table": "t", "record": []}),
        # the original carries no id: the typed record's field names it
        destination("ch", {"event_type": "x"}, success={"table": "t", "record": record}),
        {"namespace": "token", "id": "srv", "original": {"message_id": 42}},
        {"namespace": "token", "id": "srv", "original": {"messageId": "m-1"}},
    ]
    assert daemon.post_ndjson(lines).status == 202
    assert daemon.post_token("web", json.dumps(flat)).status == 202
    settle(daemon)
    status, body = journey(daemon, "flat-7")
    assert status == 200, body
    assert [e["token_id"] for e in body["received"]] == ["web"]
    assert [(d["destination_id"], d["status"]) for d in body["destinations"]] == [("pg", "success")]
    status, body = journey(daemon, "rec-9")
    assert status == 200 and [d["destination_id"] for d in body["destinations"]] == ["ch"]
    assert journey(daemon, "42")[1]["received"][0]["original"] == {"message_id": 42}
    assert journey(daemon, "m-1")[1]["received"][0]["original"] == {"messageId": "m-1"}


def test_unknown_and_bad_ids(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    assert daemon.post_token("shop", json.dumps({"event_id": "known"})).status == 202
    settle(daemon)
    status, body = journey(daemon, "unknown")
    assert status == 404 and "no cached entry carries event id 'unknown'" in body["message"]
    status, body = journey(daemon, "know")  # a prefix of a known id is not it
    assert status == 404
    reply = daemon.api(JOURNEY)
    assert reply.status == 400 and reply.json == {"message": "event_id is required"}
    status, body = journey(daemon, "x" * 257)
    assert status == 400 and "at most 256" in body["message"]
    assert daemon.api(JOURNEY, {"event_id": "known"}, token="wrong").status == 401
    assert journey(daemon, "known")[0] == 200


def test_an_entry_trimmed_away_is_not_found_any_more(start_daemon: Any) -> None:
    """The index names the list; the entry itself must still be there."""
    events = {"size": 2, "time_window_sec": 1, "trim_interval_ms": 50}  # refills in 0.5 s
    daemon = start_daemon({"server": {"cache": {"events": events}}})
    assert daemon.post_token("shop", json.dumps({"event_id": "first"})).status == 202
    settle(daemon)
    assert journey(daemon, "first")[0] == 200
    for n in range(2):
        body = json.dumps({"event_id": f"later-{n}"})
        while daemon.post_token("shop", body).json["rate_limited"]:
            time.sleep(0.1)  # not cached: the bucket is empty, send it again
    settle(daemon)
    deadline = time.monotonic() + 10
    while journey(daemon, "first")[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.05)  # the trim loop runs every 50 ms
    assert journey(daemon, "first")[0] == 404
    assert journey(daemon, "later-1")[0] == 200


def test_the_index_is_one_key_per_window_and_shard_expiring_after_retention(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """A batch's members go to its window's keys, one per shard of their ids (spread, not
    one hot key), each expiring `retention_minutes` after the window ends; an event id
    cached many times in one list is one member."""
    daemon = start_daemon({**NO_REFILL, "sidecar": {"journey": {"retention_minutes": 7}}})
    ids = [f"ev-{n}" for n in range(40)]
    body = json.dumps([{"event_id": "same"}] * 5 + [{"event_id": i} for i in ids])
    before = time.time()
    assert daemon.post_token("shop", body).status == 202
    settle(daemon)
    after = time.time()
    keys = sorted(k.decode() for k in redis_client.scan_iter("events_cache:journey:*"))
    members: dict[str, str] = {}
    for key in keys:
        bucket, shard = map(int, key.removeprefix("events_cache:journey:").split(":"))
        assert int(before // JOURNEY_BUCKET_S) <= bucket <= int(after // JOURNEY_BUCKET_S)
        assert 0 <= shard < JOURNEY_SHARDS
        assert redis_client.expiretime(key) == (bucket + 1) * JOURNEY_BUCKET_S + 7 * 60
        stored: list[bytes] = redis_client.zrange(key, 0, -1)  # type: ignore[assignment]
        for member in stored:
            event_id, rest = member.decode().split("\0", 1)
            assert rest == "token\0a\0shop" and event_id not in members
            assert journey_shard(event_id) == shard  # the look-up reads that key alone
            members[event_id] = key
    assert sorted(members) == sorted([*ids, "same"])
    # every shard took a share (the window's keys: one per shard, two windows at a turn)
    assert {journey_shard(i) for i in members} == set(range(JOURNEY_SHARDS))
    assert JOURNEY_SHARDS <= len(keys) <= 2 * JOURNEY_SHARDS
    status, found = journey(daemon, "same")
    assert status == 200 and len(found["received"]) == 5
    assert all(journey(daemon, i)[0] == 200 for i in ids[:10])
    # a second batch in the same window: ZADDs again, but no EXPIREAT (once per key). The
    # keys' expiry is moved by hand first: an EXPIREAT from the daemon would move it back.
    # (Counting EXPIREAT calls in INFO would count other tests' on a shared server.)
    marked = {key: redis_client.expiretime(key) + 1000 for key in keys}
    for key, moment in marked.items():
        redis_client.expireat(key, moment)
    assert daemon.post_token("shop", body).status == 202
    settle(daemon)
    if int(before // JOURNEY_BUCKET_S) == int(time.time() // JOURNEY_BUCKET_S):
        assert {key: redis_client.expiretime(key) for key in keys} == marked


def test_no_rules_no_index(start_daemon: Any, redis_client: redis.Redis) -> None:
    daemon = start_daemon({"sidecar": {"journey": {"event_id_from": []}}})
    assert daemon.post_token("shop", json.dumps({"event_id": "e"})).status == 202
    settle(daemon)
    assert list(redis_client.scan_iter("events_cache:journey:*")) == []
    assert journey(daemon, "e")[0] == 404


def test_a_look_up_reads_at_most_max_journey_lists_and_says_it_was_cut(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    event = {"event_id": "everywhere"}
    many = MAX_JOURNEY_LISTS + 5
    lines = [destination(f"d{n:03}", event, skip="x") for n in range(many)]
    assert daemon.post_ndjson(lines).status == 202
    settle(daemon)
    reply = daemon.api(JOURNEY, {"event_id": "everywhere"})
    assert reply.status == 200
    assert len(reply.json["destinations"]) == MAX_JOURNEY_LISTS
    assert reply.headers.get("X-Events-Cache-Truncated") == "true"
    assert daemon.post_ndjson([destination("one", {"event_id": "once"}, skip="x")]).status == 202
    settle(daemon)
    reply = daemon.api(JOURNEY, {"event_id": "once"})
    assert reply.status == 200 and "X-Events-Cache-Truncated" not in reply.headers


def test_ids_written_with_json_escapes_are_found(start_daemon: Any) -> None:
    """A writer that escapes what is not ASCII (Python's json), or <>& (Go's): the id's
    bytes are not in the stored entry as they are, yet the look-up finds it; a UUID-like
    id (no character any writer escapes) is found by its bytes alone."""
    daemon = start_daemon()
    bodies = [
        '{"event_type": "a", "eventn_ctx": {"event_id": "caf\\u00e9-1"}}',
        '{"event_type": "b", "eventn_ctx": {"event_id": "a\\u003cb\\u0026c"}}',
        '{"event_type": "c", "eventn_ctx": {"event_id": "ev-9"}, "note": "\\u00e9t\\u00e9"}',
    ]
    for body in bodies:
        assert daemon.post_token("shop", body).status == 202
    settle(daemon)
    for event_id, event_type in (("café-1", "a"), ("a<b&c", "b"), ("ev-9", "c")):
        status, body = journey(daemon, event_id)
        assert status == 200, (event_id, body)
        assert [e["original"]["event_type"] for e in body["received"]] == [event_type]


def test_a_failed_read_leaves_nothing_behind_and_a_killed_connection_is_retried(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    """The look-up's reads (`daemon.store.reads`, not redis-py's pipeline): an error reply
    is a 503, and the look-ups after it get their own replies (the connection, with a
    reply still unread, is dropped); a pooled connection Redis closed is retried once on
    a fresh one."""
    daemon = start_daemon(NO_REFILL)
    event = {"event_id": "ev-w"}
    assert daemon.post_token("shop", json.dumps(event)).status == 202
    assert daemon.post_ndjson([destination("pg", event, skip="x")]).status == 202
    assert daemon.post_token("other", json.dumps({"event_id": "ev-ok"})).status == 202
    settle(daemon)
    assert journey(daemon, "ev-w")[0] == 200
    redis_client.delete("events_cache:destination#pg")
    redis_client.set("events_cache:destination#pg", "not a list")  # read first, then shop's
    status, body = journey(daemon, "ev-w")
    assert status == 503 and "WRONGTYPE" in body["message"]
    for _ in range(3):  # whichever pooled connection answers: the right replies
        status, body = journey(daemon, "ev-ok")
        assert status == 200 and [e["token_id"] for e in body["received"]] == ["other"]
    assert redis_client.client_kill_filter(_type="normal", skipme=True) > 0
    status, body = journey(daemon, "ev-ok")
    assert status == 200 and [e["token_id"] for e in body["received"]] == ["other"]
