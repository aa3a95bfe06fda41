"""End-to-end ingest: the daemon in-process on real Redis, through its real socket and ports.

Every assertion reads the outcome where a user would see it: the 202 body, the lists
in Redis (key layout and entry format of Jitsu Classic) and the query API.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
import redis

from tests.support.daemon import StartDaemon
from tests.support.scrape import list_key as key
from tests.support.scrape import settle
from tests.support.servers import SpawnRedis, wait_for

pytestmark = pytest.mark.e2e

# A window long enough that no bucket refills while a test runs.
NO_REFILL = {"time_window_sec": 3600}


def stored(client: redis.Redis, k: str) -> list[dict[str, Any]]:
    """The entries of a list as Jitsu would read them: LRANGE + json.loads."""
    return [json.loads(raw) for raw in client.lrange(k, 0, -1)]


def originals(entries: list[dict[str, Any]]) -> list[Any]:
    return [json.loads(e["original"]) for e in entries]


def accepted(n: int) -> dict[str, Any]:
    return {"accepted": n, "rate_limited": 0, "dropped": 0, "invalid": 0, "errors": []}


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_object_array_and_malformed_bodies(
    start_daemon: StartDaemon, redis_client: redis.Redis, via: str
) -> None:
    daemon = start_daemon({"server": {"cache": {"events": NO_REFILL}}})
    token = f"key-{via}"

    reply = daemon.post_token(token, '{"event_type": "first", "n": 1}', via=via)
    assert (reply.status, reply.json) == (202, accepted(1))
    reply = daemon.post_token(token, b'[{"n": 2}, 5, {"n": 3}]', via=via)
    assert (reply.status, reply.json) == (202, accepted(3))
    reply = daemon.post_token(token, b"this is not json {", via=via)
    assert (reply.status, reply.json) == (202, accepted(1))
    settle(daemon)

    all_entries = stored(redis_client, key("token", token))
    assert len(all_entries) == 5
    # Newest first: the malformed body, then the array's elements in reverse, then the object.
    assert all_entries[0]["malformed"] == "this is not json {"
    assert "invalid JSON" in all_entries[0]["error"]
    assert json.loads(all_entries[1]["original"]) == {"n": 3}
    assert all_entries[2]["malformed"] == "5"
    assert "array element 1" in all_entries[2]["error"]
    assert json.loads(all_entries[3]["original"]) == {"n": 2}
    assert json.loads(all_entries[4]["original"]) == {"event_type": "first", "n": 1}
    for entry in all_entries:
        assert entry["token_id"] == token

    # The malformed ones (the body and the scalar element) also go to the error list.
    errors = stored(redis_client, key("token", token, error=True))
    assert [e["malformed"] for e in errors] == ["this is not json {", "5"]
    assert [e["uid"] for e in errors] == [all_entries[0]["uid"], all_entries[2]["uid"]]

    answer = daemon.query(namespace="token", ids=token)
    assert answer["total_events"] == 5
    assert [e.get("original") for e in answer["events"]] == [
        None,
        {"n": 3},
        None,
        {"n": 2},
        {"event_type": "first", "n": 1},
    ]
    m = daemon.metrics()
    assert m['events_cache_received_total{cache_namespace="token"}'] == 5
    assert m['events_cache_cached_total{cache_namespace="token",collection="all"}'] == 5
    assert m['events_cache_cached_total{cache_namespace="token",collection="error"}'] == 2
    assert m["events_cache_malformed_total"] == 2


def test_skip_and_error_headers(start_daemon: StartDaemon, redis_client: redis.Redis) -> None:
    daemon = start_daemon({"server": {"cache": {"events": NO_REFILL}}})

    reply = daemon.post_token(
        "k", b'[{"a": 1}, {"a": 2}]', headers={"X-Events-Cache-Skip": "bot traffic"}
    )
    assert (reply.status, reply.json["accepted"]) == (202, 2)
    reply = daemon.post_token(
        "k", b'{"a": 3}', headers={"X-Events-Cache-Error": "quota exceeded"}, via="tcp"
    )
    assert (reply.status, reply.json["accepted"]) == (202, 1)
    settle(daemon)

    entries = stored(redis_client, key("token", "k"))
    assert len(entries) == 3
    rejected, skipped = entries[0], entries[1:]
    # Rejected by the ingest: the body is kept as malformed text with the ingest's error.
    assert rejected["malformed"] == '{"a": 3}'
    assert rejected["error"] == "quota exceeded"
    assert "original" not in rejected and "skip" not in rejected
    assert [e["skip"] for e in skipped] == ["bot traffic", "bot traffic"]
    assert originals(skipped) == [{"a": 2}, {"a": 1}]
    assert all("error" not in e and "malformed" not in e for e in skipped)
    # Only the rejected body is an error; skipped events are not.
    errors = stored(redis_client, key("token", "k", error=True))
    assert [e["uid"] for e in errors] == [rejected["uid"]]

    answer = daemon.query(namespace="token", ids="k")
    assert answer["events"][0]["error"] == "quota exceeded"
    assert [e.get("skip") for e in answer["events"]] == [None, "bot traffic", "bot traffic"]


def test_ndjson_mixed_ids_namespaces_and_bad_lines(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    daemon = start_daemon({"server": {"cache": {"events": NO_REFILL}}})
    success = {
        "destination_id": "d1",
        "table": "events",
        "record": [{"field": "n", "type": "int", "value": 1}],
    }
    lines: list[Any] = [
        {"namespace": "token", "id": "t1", "original": {"n": 1}},  # 1
        {
            "namespace": "destination",
            "id": "d1",
            "original": {"n": 1},
            "success": success,
            "token_id": "t1",
            "timestamp": "2024-05-01T12:00:00Z",
        },  # 2
        {"namespace": "token", "id": "t2", "original": {"n": 2}, "skip": "filtered"},  # 3
        '{"namespace": "token", "id": "t1", "original": ',  # 4: cut off
        {"namespace": "destination", "id": "d2", "original": "raw text", "error": "boom"},  # 5
        {"id": "t1", "original": {"n": 9}},  # 6: no namespace
        {"namespace": "token", "id": "t1", "malformed": "<garbage>", "error": "bad json"},  # 7
        {"namespace": "destination", "id": "d1", "original": {"n": 3}, "skip": "disabled"},  # 8
        {"namespace": "destination", "id": "d3", "original": {"n": 4}},  # 9: no outcome
        {"namespace": "token", "id": "t1", "original": {"n": 5}},  # 10
    ]
    reply = daemon.post_ndjson(lines, via="tcp")
    assert reply.status == 202
    body = reply.json
    assert (body["accepted"], body["invalid"], body["rate_limited"], body["dropped"]) == (
        7,
        3,
        0,
        0,
    )
    assert [e["line"] for e in body["errors"]] == [4, 6, 9]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    settle(daemon)

    t1 = stored(redis_client, key("token", "t1"))
    assert [e.get("original") and json.loads(e["original"]) for e in t1] == [
        {"n": 5},
        None,
        {"n": 1},
    ]
    assert t1[1]["malformed"] == "<garbage>" and t1[1]["error"] == "bad json"
    assert [e["malformed"] for e in stored(redis_client, key("token", "t1", True))] == ["<garbage>"]
    t2 = stored(redis_client, key("token", "t2"))
    assert len(t2) == 1 and t2[0]["skip"] == "filtered"

    d1 = stored(redis_client, key("destination", "d1"))
    assert [e.get("skip") for e in d1] == ["disabled", None]
    assert json.loads(d1[1]["success"]) == success
    assert d1[1]["timestamp"] == "2024-05-01T12:00:00.000000Z"  # the ingest's, Jitsu's layout
    assert d1[1]["token_id"] == "t1" and d1[1]["destination_id"] == "d1"
    assert redis_client.llen(key("destination", "d1", True)) == 0

    d2 = stored(redis_client, key("destination", "d2"))
    assert len(d2) == 1 and d2[0]["error"] == "boom"
    assert d2[0]["original"] == '"raw text"'  # a text original is stored as a JSON string
    assert stored(redis_client, key("destination", "d2", True)) == d2
    assert not redis_client.exists(key("destination", "d3"))
    assert not redis_client.exists(key("token", "None"))  # the namespace-less line

    m = daemon.metrics()
    assert m["events_cache_invalid_total"] == 3
    assert m['events_cache_received_total{cache_namespace="token"}'] == 4
    assert m['events_cache_received_total{cache_namespace="destination"}'] == 3


def test_ndjson_reports_at_most_ten_errors(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    daemon = start_daemon()
    lines: list[Any] = ["not json"] * 12 + [{"namespace": "token", "id": "ok", "original": {}}]
    reply = daemon.post_ndjson(lines)
    assert reply.status == 202
    assert reply.json["invalid"] == 12 and reply.json["accepted"] == 1
    assert [e["line"] for e in reply.json["errors"]] == list(range(1, 11))
    settle(daemon)
    assert redis_client.llen(key("token", "ok")) == 1


def test_newest_first_per_id_with_several_writers(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    daemon = start_daemon(
        {"server": {"cache": {"events": {"size": 1000, **NO_REFILL}, "pool": {"size": 4}}}}
    )
    ids = [f"id-{i}" for i in range(12)]
    requests, per_request = 5, 40
    for r in range(requests):
        lines = [
            {
                "namespace": "destination",
                "id": ids[(r + n) % len(ids)],
                "original": {"seq": r * per_request + n},
                "success": {"ok": True},
            }
            for n in range(per_request)
        ]
        reply = daemon.post_ndjson(lines, via="tcp" if r % 2 else "unix")
        assert reply.json["accepted"] == per_request
    # The same ids over the raw token endpoint, one request per event.
    for n in range(30):
        assert daemon.post_token(ids[n % 3], json.dumps({"seq": n})).json["accepted"] == 1
    settle(daemon)

    sent: dict[str, list[int]] = {i: [] for i in ids}
    for r in range(requests):
        for n in range(per_request):
            sent[ids[(r + n) % len(ids)]].append(r * per_request + n)
    for id_ in ids:
        seqs = [o["seq"] for o in originals(stored(redis_client, key("destination", id_)))]
        assert seqs == list(reversed(sent[id_])), id_
        answer = daemon.query(ids=id_)
        assert [e["original"]["seq"] for e in answer["events"]] == seqs
    for i in range(3):
        seqs = [o["seq"] for o in originals(stored(redis_client, key("token", ids[i])))]
        assert seqs == list(reversed(range(i, 30, 3)))


def test_trim_keeps_at_most_size_after_a_burst(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    size = 5
    daemon = start_daemon(
        {
            "server": {
                "cache": {"events": {"size": size, "time_window_sec": 1, "trim_interval_ms": 100}}
            }
        }
    )

    def burst(seqs: range) -> list[dict[str, Any]]:
        return [
            line
            for n in seqs
            for line in (
                {"namespace": "token", "id": "burst", "original": {"seq": n}},
                {"namespace": "destination", "id": "dburst", "original": {"seq": n}, "error": "e"},
            )
        ]

    first = daemon.post_ndjson(burst(range(size)))
    assert first.json["accepted"] == 2 * size
    time.sleep(1.2)  # the buckets (size per second) refill completely
    second = daemon.post_ndjson(burst(range(size, 3 * size)))
    # Only a bucket's worth per id gets through.
    assert (second.json["accepted"], second.json["rate_limited"]) == (2 * size, 2 * size)
    settle(daemon)
    assert (
        daemon.metric("events_cache_cached_total", collection="all", cache_namespace="token") == 10
    )
    m = daemon.metrics()
    assert m['events_cache_cached_total{cache_namespace="destination",collection="error"}'] == 10

    # Both bursts reached Redis (10 entries per list); the trim loop cuts each list to
    # `size`, keeping the newest.
    for k in (
        key("token", "burst"),
        key("destination", "dburst"),
        key("destination", "dburst", True),
    ):

        def trimmed(k: str = k) -> bool:
            return redis_client.llen(k) == size

        wait_for(trimmed, timeout=5)
        seqs = [o["seq"] for o in originals(stored(redis_client, k))]
        assert seqs == [9, 8, 7, 6, 5], k
    answer = daemon.query(namespace="token", ids="burst", limit=100)
    assert answer["total_events"] == size
    assert [e["original"]["seq"] for e in answer["events"]] == [9, 8, 7, 6, 5]
    answer = daemon.query(ids="dburst", status="error")
    assert answer["total_events"] == size
    assert [e["original"]["seq"] for e in answer["events"]] == [9, 8, 7, 6, 5]


def test_fully_rate_limited_request_touches_no_redis(
    start_daemon: StartDaemon, spawn_redis: SpawnRedis
) -> None:
    server = spawn_redis()  # a server of its own: its command statistics are ours alone
    daemon = start_daemon(
        {"server": {"cache": {"events": {"size": 2, **NO_REFILL}}}}, url=server.url
    )
    assert (
        daemon.post_ndjson(
            [{"namespace": "token", "id": "lim", "original": {"n": n}} for n in range(2)]
        ).json["accepted"]
        == 2
    )
    settle(daemon)
    client = server.client()
    try:

        def lpush_calls() -> int:
            stats = client.info("commandstats")
            return int(stats.get("cmdstat_lpush", {}).get("calls", 0))

        before = lpush_calls()
        assert before >= 1
        for n in range(5):
            reply = daemon.post_token("lim", json.dumps({"n": n}))
            assert (reply.json["accepted"], reply.json["rate_limited"]) == (0, 1)
        reply = daemon.post_token("other", b"{}")  # a request that is cached, for contrast
        assert reply.json["accepted"] == 1
        settle(daemon)
        wait_for(lambda: lpush_calls() == before + 1, timeout=5)
        assert client.llen(key("token", "lim")) == 2
    finally:
        client.close()


def test_ttl_set_when_configured(start_daemon: StartDaemon, redis_client: redis.Redis) -> None:
    daemon = start_daemon(
        {
            "server": {"cache": {"events": {"trim_interval_ms": 100}}},
            "meta": {"storage": {"redis": {"ttl_minutes": {"events_cache": 2}}}},
        }
    )
    daemon.post_token("ttl-key", b'{"a": 1}')
    daemon.post_token("ttl-key", b"not json")
    daemon.post_ndjson(
        [{"namespace": "destination", "id": "ttl-dest", "original": {}, "error": "x"}]
    )
    settle(daemon)
    for k in (
        key("token", "ttl-key"),
        key("token", "ttl-key", True),
        key("destination", "ttl-dest"),
        key("destination", "ttl-dest", True),
    ):

        def expiring(k: str = k) -> bool:
            return redis_client.ttl(k) > 0

        wait_for(expiring, timeout=5)
        assert 0 < redis_client.ttl(k) <= 120, k


def test_no_ttl_by_default(start_daemon: StartDaemon, redis_client: redis.Redis) -> None:
    events = {"size": 2, "time_window_sec": 1, "trim_interval_ms": 100}
    daemon = start_daemon({"server": {"cache": {"events": events}}})
    daemon.post_token("persist", b'[{"a": 1}, {"a": 2}]')
    time.sleep(1.1)  # the rate limit's window (size per window) refills
    daemon.post_token("persist", b'{"a": 3}')  # over size: the trim pass sees the list
    settle(daemon)
    # Once a trim pass has run over the key, it still has no expiry.
    wait_for(lambda: daemon.metric("events_cache_trim_seconds_count") >= 1, timeout=5)
    assert redis_client.llen(key("token", "persist")) == 2
    assert redis_client.ttl(key("token", "persist")) == -1


def _check_common_fields(entry: dict[str, Any]) -> None:
    assert all(isinstance(v, str) and v != "" for v in entry.values()), entry
    ts = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
    offset = ts.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    assert entry["timestamp"].endswith("Z")
    assert abs(ts.timestamp() - time.time()) < 600
    assert uuid.UUID(entry["uid"]).version == 7


def test_entries_are_stored_in_jitsu_format(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    daemon = start_daemon()
    body = '{"event_type": "pageview", "nested": {"list": [1, 2.5, "x", null, true]}}'
    daemon.post_token("fmt-key", body)
    success = {
        "destination_id": "fmt-dest",
        "url": "https://example.com/hook",
        "method": "POST",
        "headers": {"A": "b"},
        "body": "{}",
    }
    daemon.post_ndjson(
        [
            {
                "namespace": "destination",
                "id": "fmt-dest",
                "token_id": "fmt-key",
                "original": json.loads(body),
                "success": success,
            }
        ]
    )
    settle(daemon)

    raw_token = redis_client.lrange(key("token", "fmt-key"), 0, -1)
    assert len(raw_token) == 1
    entry = json.loads(raw_token[0])
    assert set(entry) == {"original", "timestamp", "uid", "token_id"}
    assert isinstance(entry["original"], str)  # double-encoded, as Jitsu stores it
    assert json.loads(entry["original"]) == json.loads(body)
    assert entry["token_id"] == "fmt-key"
    _check_common_fields(entry)

    entry = json.loads(redis_client.lrange(key("destination", "fmt-dest"), 0, -1)[0])
    assert set(entry) == {"original", "success", "timestamp", "uid", "destination_id", "token_id"}
    assert isinstance(entry["original"], str) and isinstance(entry["success"], str)
    assert json.loads(entry["original"]) == json.loads(body)
    assert json.loads(entry["success"]) == success
    assert (entry["destination_id"], entry["token_id"]) == ("fmt-dest", "fmt-key")
    _check_common_fields(entry)

    # The query turns the double-encoded strings back into objects.
    event = daemon.query(ids="fmt-dest")["events"][0]
    assert event["original"] == json.loads(body)
    assert event["success"] == success
    assert event["uid"] == entry["uid"] and event["timestamp"] == entry["timestamp"]


def test_a_body_limited_in_both_lists_is_counted_unparsed_and_parsed_otherwise(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    daemon = start_daemon({"server": {"cache": {"events": {"size": 2, **NO_REFILL}}}})

    def answer(token: str, body: bytes) -> tuple[int, int]:
        reply = daemon.post_token(token, body)
        assert reply.status == 202, reply.raw
        return reply.json["accepted"], reply.json["rate_limited"]

    # "flood": two malformed bodies use up both of its lists' buckets.
    assert [answer("flood", b"not json") for _ in range(2)] == [(1, 0), (1, 0)]
    # From now on whatever comes is limited in both: a valid object, a malformed body,
    # and (parsed, since it can hold several events) an array of three.
    assert answer("flood", b'{"n": 1}') == (0, 1)
    assert answer("flood", b"  still not json") == (0, 1)
    assert answer("flood", b' [{"n": 2}, {"n": 3}, {"n": 4}]') == (0, 3)
    # "room": its `all` list is limited, its error list is not (never used): a malformed
    # body is parsed and cached in the error list, counted as limited in `all`.
    assert [answer("room", b"{}") for _ in range(2)] == [(1, 0), (1, 0)]
    assert answer("room", b"not json") == (0, 1)
    settle(daemon)
    m = daemon.metrics()
    assert m['events_cache_received_total{cache_namespace="token"}'] == 10
    assert m['events_cache_rate_limited_total{cache_namespace="token",collection="all"}'] == 6
    assert m['events_cache_rate_limited_total{cache_namespace="token",collection="error"}'] == 0
    # Malformed counts the bodies that were parsed: two of "flood", one of "room".
    assert m["events_cache_malformed_total"] == 3
    assert redis_client.llen(key("token", "flood", True)) == 2
    assert redis_client.llen(key("token", "room", True)) == 1
    wait_for(lambda: daemon.query(namespace="token", ids="flood")["last_minute_limited"] == 5)
    assert daemon.query(namespace="token", ids="flood", status="error")["last_minute_limited"] == 0
    assert daemon.query(namespace="token", ids="room")["last_minute_limited"] == 1


def test_a_token_limited_in_all_still_caches_its_malformed_bodies_as_errors(
    start_daemon: StartDaemon,
) -> None:
    """Once a token's `all` list is limited and its error list is not, a valid object is
    counted limited without being built (it goes to `all` alone); a malformed body still
    goes to the error list, as does an array's element that is not an object."""
    size = 2
    daemon = start_daemon({"server": {"cache": {"events": {"size": size, **NO_REFILL}}}})
    for n in range(size):
        assert daemon.post_token("half", json.dumps({"n": n})).json["accepted"] == 1
    counts = []
    for body in (b'{"n": 9}', b'{"cut short', b"[1]", b'{"n": 10}'):
        reply = daemon.post_token("half", body)
        counts.append((reply.json["accepted"], reply.json["rate_limited"]))
    assert counts == [(0, 1)] * 4  # the two malformed ones cached in the error list only
    settle(daemon)
    errors = daemon.query(namespace="token", ids="half", status="error")["events"]
    assert sorted(e["malformed"] for e in errors) == ["1", '{"cut short']
    assert daemon.query(namespace="token", ids="half")["total_events"] == size
    assert daemon.metric("events_cache_malformed_total") == 2
    assert (
        daemon.metric("events_cache_rate_limited_total", cache_namespace="token", collection="all")
        == 4
    )
    assert daemon.metric("events_cache_received_total", cache_namespace="token") == size + 4


def test_an_id_with_braces_is_taken_on_the_token_path_as_in_ndjson(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    """The id rule allows braces: the token path takes them as an NDJSON line does."""
    daemon = start_daemon()
    reply = daemon.post_token("{{user}}", b'{"n": 1}')
    assert (reply.status, reply.json) == (202, accepted(1))
    settle(daemon)
    assert [e["original"] for e in daemon.query(namespace="token", id="{{user}}")["events"]] == [
        {"n": 1}
    ]
