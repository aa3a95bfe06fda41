"""End-to-end query API: parameters, response shape, auth, shared counts, Jitsu interop.

The daemon runs in-process on real Redis; some entries are written straight into
Redis the way Jitsu Classic writes them, so the query is checked against both writers.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from tests.support.daemon import ADMIN_TOKEN, InProcessDaemon, StartDaemon
from tests.support.scrape import list_key as key
from tests.support.scrape import settle
from tests.support.servers import wait_for

pytestmark = pytest.mark.e2e

NO_REFILL = {"time_window_sec": 3600}
FIELD_ORDER = [
    "total_events",
    "last_minute_limited",
    "cache_capacity_per_interval",
    "interval_seconds",
    "response_events",
    "events",
]
UNAUTHORIZED = {"message": "Admin token does not match"}
CACHE = "/api/v1/events/cache"


def jitsu_entry(n: int, **fields: str) -> bytes:
    """An entry as Jitsu Classic writes it: original/success double-encoded."""
    doc: dict[str, str] = {"original": json.dumps({"seq": n}), **fields}
    doc.setdefault("timestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    doc.setdefault("uid", str(uuid.uuid4()))
    return json.dumps(doc).encode()


def dest_line(id_: str, n: int, outcome: str = "success") -> dict[str, Any]:
    line: dict[str, Any] = {"namespace": "destination", "id": id_, "original": {"seq": n}}
    if outcome == "success":
        line["success"] = {"destination_id": id_, "table": "t", "record": []}
    elif outcome == "error":
        line["error"] = f"failed {n}"
    else:
        line["skip"] = "skipped"
    return line


def seqs(answer: dict[str, Any]) -> list[int]:
    return [e["original"]["seq"] for e in answer["events"]]


@pytest.fixture
def populated(start_daemon: StartDaemon) -> InProcessDaemon:
    """A daemon (size 10) with destinations a (5 events, 2 errors), b (3), c (1 error),
    and token key-1 (2 events)."""
    daemon = start_daemon({"server": {"cache": {"events": {"size": 10, **NO_REFILL}}}})
    lines = [
        dest_line("a", 0),
        dest_line("a", 1, "error"),
        dest_line("b", 10),
        dest_line("a", 2),
        dest_line("b", 11, "skip"),
        dest_line("a", 3, "error"),
        dest_line("c", 20, "error"),
        dest_line("a", 4),
        dest_line("b", 12),
        {"namespace": "token", "id": "key-1", "original": {"seq": 100}},
        {"namespace": "token", "id": "key-1", "original": {"seq": 101}},
    ]
    assert daemon.post_ndjson(lines).json["accepted"] == len(lines)
    settle(daemon)
    return daemon


def test_response_shape_and_counts_match_redis(
    populated: InProcessDaemon, redis_client: redis.Redis
) -> None:
    reply = populated.api(CACHE, {"ids": "a,b"})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    answer = json.loads(reply.raw)
    assert list(answer) == FIELD_ORDER
    assert answer["total_events"] == redis_client.llen(key("destination", "a")) + redis_client.llen(
        key("destination", "b")
    )
    assert answer["total_events"] == 8
    assert answer["response_events"] == len(answer["events"]) == 8
    assert answer["cache_capacity_per_interval"] == 10
    assert answer["interval_seconds"] == 3600
    assert answer["last_minute_limited"] == 0
    # ids in request order, newest first within an id.
    assert seqs(answer) == [4, 3, 2, 1, 0, 12, 11, 10]
    for event in answer["events"]:
        assert isinstance(event["timestamp"], str) and event["timestamp"]
        assert uuid.UUID(event["uid"])
        assert event["destination_id"] in ("a", "b")
        assert event["token_id"] == ""  # always present, empty when unknown
    token_events = populated.query(namespace="token", ids="key-1")["events"]
    assert [e["token_id"] for e in token_events] == ["key-1", "key-1"]
    assert [e["destination_id"] for e in token_events] == ["", ""]

    errors = populated.query(ids="a,c", status="error")
    assert list(errors) == FIELD_ORDER
    assert errors["total_events"] == (
        redis_client.llen(key("destination", "a", True))
        + redis_client.llen(key("destination", "c", True))
    )
    assert errors["total_events"] == 3
    assert seqs(errors) == [3, 1, 20]
    assert [e["error"] for e in errors["events"]] == ["failed 3", "failed 1", "failed 20"]


def test_ids_in_request_order(populated: InProcessDaemon) -> None:
    assert seqs(populated.query(ids="b,a")) == [12, 11, 10, 4, 3, 2, 1, 0]
    assert seqs(populated.query(ids="c,b", limit=1)) == [20, 12]
    # An id without events adds nothing but does not fail.
    answer = populated.query(ids="nobody,b")
    assert seqs(answer) == [12, 11, 10] and answer["total_events"] == 3


def test_ids_absent_means_every_id_written(populated: InProcessDaemon) -> None:
    answer = populated.query()  # destination namespace by default
    assert answer["total_events"] == 9
    assert sorted(seqs(answer)) == [0, 1, 2, 3, 4, 10, 11, 12, 20]
    assert {e["destination_id"] for e in answer["events"]} == {"a", "b", "c"}
    # Within each id, newest first.
    by_id: dict[str, list[int]] = {}
    for e in answer["events"]:
        by_id.setdefault(e["destination_id"], []).append(e["original"]["seq"])
    assert by_id == {"a": [4, 3, 2, 1, 0], "b": [12, 11, 10], "c": [20]}

    tokens = populated.query(namespace="token")
    assert seqs(tokens) == [101, 100]
    errors = populated.query(status="error")
    assert sorted(seqs(errors)) == [1, 3, 20]


def test_ids_empty_means_no_events(populated: InProcessDaemon) -> None:
    answer = populated.query(ids="")
    assert list(answer) == FIELD_ORDER
    assert answer["events"] == [] and answer["total_events"] == 0
    assert answer["response_events"] == 0
    assert populated.query(ids=",,")["events"] == []


def test_namespace_defaults_to_destination(start_daemon: StartDaemon) -> None:
    daemon = start_daemon()
    daemon.post_token("same-id", b'{"seq": 1}')
    daemon.post_ndjson([dest_line("same-id", 2)])
    settle(daemon)
    assert seqs(daemon.query(ids="same-id")) == [2]
    assert seqs(daemon.query(ids="same-id", namespace="")) == [2]
    assert seqs(daemon.query(ids="same-id", namespace="destination")) == [2]
    assert seqs(daemon.query(ids="same-id", namespace="token")) == [1]


def test_limit_default_cap_and_zero(start_daemon: StartDaemon, redis_client: redis.Redis) -> None:
    size = 150
    daemon = start_daemon({"server": {"cache": {"events": {"size": size}}}})
    # 200 entries written by another writer (as Jitsu Classic would), untrimmed by us.
    redis_client.lpush(key("destination", "big"), *[jitsu_entry(n) for n in range(200)])
    assert redis_client.llen(key("destination", "big")) == 200

    default = daemon.query(ids="big")
    assert default["response_events"] == 100 and len(default["events"]) == 100
    assert default["total_events"] == 200
    assert seqs(default) == list(range(199, 99, -1))
    assert daemon.query(ids="big", limit=120)["response_events"] == 120
    capped = daemon.query(ids="big", limit=1000)
    assert capped["response_events"] == len(capped["events"]) == size
    assert seqs(capped) == list(range(199, 199 - size, -1))
    assert seqs(daemon.query(ids="big", limit=1)) == [199]

    zero = daemon.query(ids="big", limit=0)
    assert list(zero) == FIELD_ORDER
    assert zero["events"] == [] and zero["response_events"] == 0
    assert zero["total_events"] == 200


def test_auth(start_daemon: StartDaemon) -> None:
    daemon = start_daemon()
    for token in (None, "", "wrong", ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1]):
        reply = daemon.api(CACHE, {"ids": ""}, token=token)
        assert (reply.status, reply.json) == (401, UNAUTHORIZED), token
    # The token in the query string is refused by default, even when it is right, with
    # Jitsu's message and why (the same answer whether the token is right or not).
    for token in (ADMIN_TOKEN, "wrong"):
        reply = daemon.api(CACHE, {"ids": "", "token": token}, token=None)
        assert reply.status == 401
        message = reply.json["message"]
        assert message.startswith(UNAUTHORIZED["message"] + ": a token in ?token= is not")
        assert "server.allow_token_in_query" in message and "X-Admin-Token header" in message
    # With a header as well, the header alone decides.
    reply = daemon.api(CACHE, {"ids": "", "token": ADMIN_TOKEN}, token="wrong")
    assert (reply.status, reply.json) == (401, UNAUTHORIZED)
    assert daemon.api(CACHE, {"ids": ""}).status == 200
    # A bad parameter is not revealed to a caller without the token.
    assert daemon.api(CACHE, {"limit": "x"}, token="wrong").status == 401


def test_token_in_query_when_allowed(start_daemon: StartDaemon) -> None:
    daemon = start_daemon({"server": {"allow_token_in_query": True}})
    reply = daemon.api(CACHE, {"ids": "", "token": ADMIN_TOKEN}, token=None)
    assert reply.status == 200 and list(reply.json) == FIELD_ORDER
    reply = daemon.api(CACHE, {"ids": "", "token": "wrong"}, token=None)
    assert (reply.status, reply.json) == (401, UNAUTHORIZED)
    assert daemon.api(CACHE, {"ids": ""}, token=None).status == 401
    assert daemon.api(CACHE, {"ids": ""}).status == 200


def test_two_admin_tokens(start_daemon: StartDaemon) -> None:
    daemon = start_daemon({"server": {"admin_token": ["old-token-1234", "new-token-5678"]}})
    for token in ("old-token-1234", "new-token-5678"):
        assert daemon.api(CACHE, {"ids": ""}, token=token).status == 200
    for token in (ADMIN_TOKEN, "old-token-1234,new-token-5678", "new-token"):
        assert daemon.api(CACHE, {"ids": ""}, token=token).status == 401


def test_last_minute_limited_summed_across_two_daemons(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    settings = {"server": {"cache": {"events": {"size": 5, "trim_interval_ms": 100, **NO_REFILL}}}}
    first, second = start_daemon(settings), start_daemon(settings)
    for daemon in (first, second):
        reply = daemon.post_ndjson([dest_line("shared", n) for n in range(8)])
        assert (reply.json["accepted"], reply.json["rate_limited"]) == (5, 3)
        reply = daemon.post_ndjson([dest_line("shared-errors", n, "error") for n in range(7)])
        assert (reply.json["accepted"], reply.json["rate_limited"]) == (5, 2)
    for daemon in (first, second):
        settle(daemon)

    # Each daemon limited 3; its counts reach Redis about once a second; any pod answers 6.
    wait_for(lambda: first.query(ids="shared")["last_minute_limited"] == 6, timeout=5)
    for daemon in (first, second):
        answer = daemon.query(ids="shared")
        assert answer["last_minute_limited"] == 6
        assert daemon.query(ids="shared-errors", status="error")["last_minute_limited"] == 4
        assert daemon.query(ids="shared,shared-errors")["last_minute_limited"] == 10
    # Both wrote 5; the trim loop keeps `size`.
    wait_for(lambda: redis_client.llen(key("destination", "shared")) == 5, timeout=5)
    assert second.query(ids="shared")["total_events"] == 5


def test_jitsu_written_entries_are_read(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    daemon = start_daemon()
    success = {
        "destination_id": "jd",
        "table": "events",
        "record": [{"field": "seq", "type": "bigint", "value": 1}],
    }
    # Jitsu Classic: LPUSH of one JSON object per event, newest first; ids may be missing.
    redis_client.lpush(key("destination", "jd"), jitsu_entry(1, success=json.dumps(success)))
    failed = jitsu_entry(2, error="table missing", destination_id="jd", token_id="tk")
    redis_client.lpush(key("destination", "jd"), failed)
    redis_client.lpush(key("destination", "jd", True), failed)
    redis_client.lpush(key("token", "tk"), jitsu_entry(3, token_id="tk"))

    answer = daemon.query(ids="jd")
    assert answer["total_events"] == 2
    newest, oldest = answer["events"]
    assert newest["original"] == {"seq": 2} and newest["error"] == "table missing"
    assert (newest["destination_id"], newest["token_id"]) == ("jd", "tk")
    assert oldest["original"] == {"seq": 1}
    assert oldest["success"] == success  # an object, not the stored string
    assert (oldest["destination_id"], oldest["token_id"]) == ("", "")
    stored = redis_client.lindex(key("destination", "jd"), 1)
    assert stored is not None and json.loads(stored)["uid"] == oldest["uid"]
    errors = daemon.query(ids="jd", status="error")
    assert [e["error"] for e in errors["events"]] == ["table missing"]
    assert daemon.query(ids="tk", namespace="token")["events"][0]["original"] == {"seq": 3}

    # Our writes go on top of Jitsu's, in the same list.
    daemon.post_ndjson([dest_line("jd", 4)])
    settle(daemon)
    assert seqs(daemon.query(ids="jd")) == [4, 2, 1]


def test_our_entries_are_readable_by_jitsu(
    start_daemon: StartDaemon, redis_client: redis.Redis
) -> None:
    daemon = start_daemon()
    daemon.post_token("tk", b'{"event_type": "click", "seq": 1}')
    daemon.post_ndjson([dest_line("jd", 2), dest_line("jd", 3, "error")])
    settle(daemon)

    # As Jitsu Classic reads: LRANGE key 0 limit-1, json.loads, then the inner strings.
    entries = [json.loads(r) for r in redis_client.lrange(key("destination", "jd"), 0, 99)]
    assert [json.loads(e["original"])["seq"] for e in entries] == [3, 2]
    assert entries[0]["error"] == "failed 3"
    assert json.loads(entries[1]["success"]) == {"destination_id": "jd", "table": "t", "record": []}
    for e in entries:
        assert e["destination_id"] == "jd"
        datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
    errors = [json.loads(r) for r in redis_client.lrange(key("destination", "jd", True), 0, 99)]
    assert [e["uid"] for e in errors] == [entries[0]["uid"]]
    stored = redis_client.lindex(key("token", "tk"), 0)
    assert stored is not None
    token = json.loads(stored)
    assert json.loads(token["original"]) == {"event_type": "click", "seq": 1}
    assert token["token_id"] == "tk"


def test_total_events_reflects_redis_after_outside_changes(
    populated: InProcessDaemon, redis_client: redis.Redis
) -> None:
    """The counts come from Redis, not from what this daemon remembers writing."""
    redis_client.lpush(key("destination", "b"), jitsu_entry(13), jitsu_entry(14))
    redis_client.rpop(key("destination", "a"))
    answer = populated.query(ids="a,b")
    assert answer["total_events"] == redis_client.llen(key("destination", "a")) + redis_client.llen(
        key("destination", "b")
    )
    assert answer["total_events"] == 9
    assert seqs(answer) == [4, 3, 2, 1, 14, 13, 12, 11, 10]


def test_last_minute_limited_expires(start_daemon: StartDaemon, redis_client: redis.Redis) -> None:
    """Counts older than 60 s do not count (slots written straight into the shared hash)."""
    daemon = start_daemon({"server": {"cache": {"events": {"size": 5}}}})
    now = int(time.time())
    for second, count in ((now - 1, 4), (now - 50, 2), (now - 61, 100), (now - 90, 1000)):
        redis_client.hincrby(
            f"events_cache:limited:destination#old:all:{second // 60}", str(second), count
        )
    assert daemon.query(ids="old")["last_minute_limited"] == 6
