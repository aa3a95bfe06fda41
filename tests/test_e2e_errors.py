"""Error signatures end to end: errors written by two pods on one Redis, grouped by
signature and counted as they are written (`GET /api/v1/errors`), read from either pod."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
import redis

from tests.support.scrape import settle
from tests.support.servers import wait_for

pytestmark = pytest.mark.e2e

ERRORS = "/api/v1/errors"
NO_REFILL = {"server": {"cache": {"events": {"time_window_sec": 3600}}}}
PQ = 'pq: column "{}" is of type numeric but expression is of type text'
PQ_SIGNATURE = "pq: column <q> is of type numeric but expression is of type text"
DIAL = "dial tcp 10.0.{}.7:5432: connect: connection refused"
DIAL_SIGNATURE = "dial tcp <addr>: connect: connection refused"


def failed(id_: str, error: str, n: int = 0) -> dict[str, Any]:
    return {"namespace": "destination", "id": id_, "original": {"n": n}, "error": error}


def errors(daemon: Any, **params: str) -> dict[str, Any]:
    reply = daemon.api(ERRORS, {"namespace": "destination", **params})
    assert reply.status == 200, reply.raw
    return reply.json


def counted(daemon: Any, total: int, **params: str) -> dict[str, Any]:
    """The answer once the pods' once-a-second flushes have counted `total` errors."""
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(errors(daemon, **params))
        return sum(s["count"] for s in found["signatures"]) == total

    wait_for(done, 10, what=f"{total} errors counted")
    return found


def test_two_pods_group_messages_that_differ_only_in_values(start_daemon: Any) -> None:
    first, second = start_daemon(NO_REFILL), start_daemon(NO_REFILL)
    before = time.time()
    columns = ["revenue", "price", "total"]
    lines = [failed("pg", PQ.format(columns[n % 3]), n) for n in range(6)]
    lines += [failed("bq", PQ.format("amount"), 9)]
    assert first.post_ndjson(lines).status == 202
    assert second.post_ndjson([failed("pg", DIAL.format(n), n) for n in range(2)]).status == 202
    assert second.post_ndjson([failed("bq", PQ.format("qty"), 10)]).status == 202
    settle(first)
    settle(second)
    after = time.time()

    for daemon in (first, second):  # any pod answers for all
        body = counted(daemon, 10)
        assert body["namespace"] == "destination"
        sigs = body["signatures"]
        assert [(s["signature"], s["count"]) for s in sigs] == [
            (PQ_SIGNATURE, 8),
            (DIAL_SIGNATURE, 2),
        ]
        assert sigs[0]["ids"] == [{"id": "pg", "count": 6}, {"id": "bq", "count": 2}]
        assert sigs[1]["ids"] == [{"id": "pg", "count": 2}]
        for sig in sigs:
            first_seen = datetime.datetime.fromisoformat(sig["first_seen"]).timestamp()
            last_seen = datetime.datetime.fromisoformat(sig["last_seen"]).timestamp()
            assert before - 1 <= first_seen <= last_seen <= after + 1
        # the example is a whole cached entry of that signature
        assert sigs[0]["example"]["error"].startswith("pq: column ")
        assert "uid" in sigs[0]["example"] and sigs[0]["example"]["original"]["n"] in range(11)
        assert sigs[1]["example"]["error"].startswith("dial tcp 10.0.")


def test_ids_and_since_narrow_the_counts(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    lines = [failed("pg", PQ.format("a")) for _ in range(3)]
    lines += [failed("bq", PQ.format("b")) for _ in range(2)]
    lines += [failed("bq", DIAL.format(1))]
    assert daemon.post_ndjson(lines).status == 202
    settle(daemon)
    counted(daemon, 6)

    only_bq = errors(daemon, ids="bq")["signatures"]
    assert sorted((s["signature"], s["count"]) for s in only_bq) == [
        (DIAL_SIGNATURE, 1),
        (PQ_SIGNATURE, 2),
    ]
    assert all(s["ids"] == [{"id": "bq", "count": s["count"]}] for s in only_bq)
    assert errors(daemon, ids="nobody")["signatures"] == []
    assert errors(daemon, ids="")["signatures"] == []  # given empty: none, as in the query
    both = errors(daemon, ids="pg,bq")["signatures"]
    assert [(s["signature"], s["count"]) for s in both] == [(PQ_SIGNATURE, 5), (DIAL_SIGNATURE, 1)]

    hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    assert len(errors(daemon, since=hour_ago.isoformat())["signatures"]) == 2
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    assert errors(daemon, since=later.isoformat())["signatures"] == []
    # the token namespace had no errors
    assert daemon.api(ERRORS, {"namespace": "token"}).json == {
        "namespace": "token",
        "signatures": [],
    }


def test_malformed_token_bodies_have_a_signature(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    for body in ("{not json", "{neither", ""):
        assert daemon.post_token("web", body).status == 202
    settle(daemon)
    wait_for(lambda: errors(daemon, namespace="token")["signatures"], 10, what="counted")
    sigs = errors(daemon, namespace="token")["signatures"]
    assert sum(s["count"] for s in sigs) == 3
    assert all(s["ids"] == [{"id": "web", "count": s["count"]}] for s in sigs)
    assert all(s["example"]["malformed"] is not None for s in sigs if s["count"] > 1)


def test_the_answer_is_bounded_in_bytes(start_daemon: Any) -> None:
    daemon = start_daemon({**NO_REFILL, "sidecar": {"api": {"max_response_bytes": 131072}}})
    # 90 signatures (words differ, not values), each example with two long fields
    kinds = [f"failure kind {chr(65 + n // 26)}{chr(65 + n % 26)} " for n in range(90)]
    lines = [
        {**failed(f"d{n}", kind + "y" * 5000), "original": {"pad": "x" * 6000}}
        for n, kind in enumerate(kinds)
    ]
    assert daemon.post_ndjson(lines).status == 202
    settle(daemon)

    def all_there() -> bool:
        reply = daemon.api(ERRORS, {"namespace": "destination"})
        return reply.headers.get("X-Events-Cache-Truncated") == "true" and bool(
            reply.json["signatures"]
        )

    wait_for(all_there, 10, what="a cut answer")
    reply = daemon.api(ERRORS, {"namespace": "destination"})
    assert len(reply.raw) <= 131072
    sigs = reply.json["signatures"]
    assert 0 < len(sigs) < 90
    # the long example is stored cut: its fields are previews of at most 1 KiB
    assert all(s["example"]["cut"]["original"] > 6000 for s in sigs)
    assert all(len(s["example"]["original"]) <= 1024 for s in sigs)
    assert all(s["example"]["cut"]["error"] > 5000 for s in sigs)


def test_erase_forgets_the_ids_counts_and_examples(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    lines = [
        failed("pg", PQ.format("a")),
        failed("bq", PQ.format("b")),
        failed("bq", DIAL.format(2)),
    ]
    assert daemon.post_ndjson(lines).status == 202
    settle(daemon)
    counted(daemon, 3)
    reply = daemon.api(
        "/api/v1/events/cache", {"namespace": "destination", "ids": "bq"}, method="DELETE"
    )
    assert reply.status == 200
    sigs = errors(daemon)["signatures"]
    assert [(s["signature"], s["count"], s["ids"]) for s in sigs] == [
        (PQ_SIGNATURE, 1, [{"id": "pg", "count": 1}])
    ]
    assert daemon.api("/api/v1/events/cache", {"namespace": "destination", "all": "true"},
                      method="DELETE").status == 200  # fmt: skip
    assert errors(daemon)["signatures"] == []


def test_more_than_a_hundred_ids_are_cut_and_said_so(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    lines = [failed(f"d{n:03d}", PQ.format(n)) for n in range(101)]
    lines += [failed("d000", PQ.format("again"))]
    assert daemon.post_ndjson(lines).status == 202
    settle(daemon)
    counted(daemon, 102)
    reply = daemon.api(ERRORS, {"namespace": "destination"})
    assert reply.headers.get("X-Events-Cache-Truncated") == "true"
    (sig,) = reply.json["signatures"]
    assert sig["count"] == 102 and len(sig["ids"]) == 100
    assert sig["ids"][0] == {"id": "d000", "count": 2}
    few = daemon.api(ERRORS, {"namespace": "destination", "ids": "d001,d002"})
    assert "X-Events-Cache-Truncated" not in few.headers
    assert few.json["signatures"][0]["count"] == 2


def test_the_keys_are_prefixed_and_expire(start_daemon: Any, redis_client: redis.Redis) -> None:
    daemon = start_daemon(NO_REFILL)
    assert daemon.post_ndjson([failed("pg", PQ.format("a"))]).status == 202
    settle(daemon)
    counted(daemon, 1)
    keys = [k.decode() for k in redis_client.scan_iter(match="events_cache:errors:*")]
    assert len(keys) == 5, keys  # counts, first, last, sigs, one signature's ids
    for key in keys:
        assert 0 < redis_client.ttl(key) <= 3600 + 120


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"namespace": "nope"}, "namespace must be 'token' or 'destination'"),
        ({"since": "yesterday"}, "since must be RFC 3339"),
        ({"since": "2024-05-01T12:00:00"}, "since must be RFC 3339"),
        ({"ids": "a,b\tc"}, "ids:"),
    ],
)
def test_bad_parameters_are_400(start_daemon: Any, params: dict[str, str], message: str) -> None:
    daemon = start_daemon()
    reply = daemon.api(ERRORS, params)
    assert reply.status == 400 and message in reply.json["message"], reply.raw
    assert daemon.api(ERRORS, {}, token="wrong").status == 401


def test_redis_down_is_503(start_daemon: Any, spawn_redis: Any) -> None:
    server = spawn_redis()
    daemon = start_daemon(url=server.url)
    server.kill()
    reply = daemon.api(ERRORS, {"namespace": "destination"})
    assert reply.status == 503 and "Redis unavailable" in reply.json["message"], reply.raw
