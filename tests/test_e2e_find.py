"""Find events end to end: the id summary, filters, stable paging, truncation, reset.

Real daemons on a real Redis; events from two daemons where the summary must show both.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis

from tests.support.scrape import list_key, settle

pytestmark = pytest.mark.e2e

NO_REFILL = {"server": {"cache": {"events": {"time_window_sec": 3600}}}}
IDS = "/api/v1/events/ids"
CACHE = "/api/v1/events/cache"


def summary(daemon: Any, **params: Any) -> dict[str, Any]:
    reply = daemon.api(IDS, params)
    assert reply.status == 200, reply.raw
    result: dict[str, Any] = reply.json
    return result


def send(daemon: Any, token: str, *bodies: str) -> None:
    for body in bodies:
        assert daemon.post_token(token, body).status == 202


def test_summary_orders_by_activity_and_counts_across_two_daemons(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    first, second = start_daemon(NO_REFILL), start_daemon(NO_REFILL)
    send(first, "old", '{"n": 1}', '{"n": 2}')
    settle(first)
    send(second, "middle", '{"n": 1}', "not json")
    settle(second)
    send(first, "new", '{"n": 1}')
    settle(first)
    redis_client.lpush(list_key("token", "jitsu-only"), b'{"original":"{}"}')  # not indexed

    for daemon in (first, second):  # any pod answers for all
        page = summary(daemon, namespace="token")
        assert [row["id"] for row in page["ids"]] == ["new", "middle", "old"]
        assert page["next_cursor"] is None
        rows = {row["id"]: row for row in page["ids"]}
        assert (rows["old"]["total_events"], rows["old"]["error_events"]) == (2, 0)
        assert (rows["middle"]["total_events"], rows["middle"]["error_events"]) == (2, 1)
        assert rows["middle"]["last_error"].startswith("invalid JSON")
        assert rows["middle"]["last_error_at"].endswith("Z")
        assert rows["old"]["last_error"] is None and rows["old"]["last_error_at"] is None
        assert rows["new"]["last_event_at"] > rows["middle"]["last_event_at"]
        assert all(row["last_minute_limited"] == 0 for row in rows.values())
    assert summary(first, namespace="destination")["ids"] == []


def test_summary_counts_limited_events_and_filters_ids(start_daemon: Any) -> None:
    daemon = start_daemon({"server": {"cache": {"events": {"size": 2, "time_window_sec": 3600}}}})
    send(daemon, "Shop-EU", json.dumps([{"n": n} for n in range(5)]))
    send(daemon, "shop-us", '{"n": 1}')
    send(daemon, "blog", '{"n": 1}')
    settle(daemon)

    def limited() -> int:
        rows = summary(daemon, namespace="token", q="eu")["ids"]
        return int(rows[0]["last_minute_limited"]) if rows else -1

    deadline = time.monotonic() + 5
    while limited() != 3 and time.monotonic() < deadline:  # flushed once a second
        time.sleep(0.1)
    assert limited() == 3
    assert [r["id"] for r in summary(daemon, namespace="token", q="SHOP")["ids"]] == [
        "shop-us",
        "Shop-EU",
    ]
    assert summary(daemon, namespace="token", q="nothing")["ids"] == []


def test_summary_cursor_pages_through_every_id_once_while_ids_are_written(
    start_daemon: Any,
) -> None:
    daemon = start_daemon(NO_REFILL)
    lines = [{"namespace": "token", "id": f"id-{n:03d}", "original": {"n": n}} for n in range(250)]
    assert daemon.post_ndjson(lines).json["accepted"] == 250  # one batch: equal write times
    settle(daemon)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"namespace": "token", "limit": 40, **({"cursor": cursor} if cursor else {})}
        page = summary(daemon, **params)
        seen += [row["id"] for row in page["ids"]]
        pages += 1
        if pages == 2:  # ids written meanwhile go to the top, never into later pages
            send(daemon, "id-000", '{"again": true}')
            send(daemon, "brand-new", '{"n": 1}')
            settle(daemon)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "no id twice"
    # id-000 was written again after page 2 (it would have been on the last page): it
    # moved to the top, where a new first page shows it. Every other id came once.
    assert sorted(seen) == sorted(f"id-{n:03d}" for n in range(1, 250))
    assert pages == 7
    first = [row["id"] for row in summary(daemon, namespace="token", limit=2)["ids"]]
    assert first == ["brand-new", "id-000"]


def test_every_filter_alone_and_combined(start_daemon: Any) -> None:
    daemon = start_daemon(NO_REFILL)
    lines = []
    for n in range(6):
        second = f"2024-05-01T12:00:0{n}Z"
        base = {"namespace": "destination", "id": "pg", "original": {"event_type": f"e{n}"}}
        outcome = {"error": f"Column MISSING {n}"} if n % 2 else {"success": {"table": "t"}}
        lines.append({**base, **outcome, "timestamp": second})
    daemon.post_ndjson(lines)
    settle(daemon)

    def types(**params: Any) -> list[str]:
        answer = daemon.query(namespace="destination", ids="pg", **params)
        return [e["original"]["event_type"] for e in answer["events"]]

    assert types() == ["e5", "e4", "e3", "e2", "e1", "e0"]
    assert types(since="2024-05-01T12:00:04Z") == ["e5", "e4"]
    assert types(until="2024-05-01T14:00:01+02:00") == ["e1", "e0"]
    assert types(q="column missing") == ["e5", "e3", "e1"]
    assert types(status="error", q="missing 3") == ["e3"]
    assert types(q="missing", since="2024-05-01T12:00:02Z", until="2024-05-01T12:00:04Z") == ["e3"]
    assert types(q="missing", limit=1) == ["e5"]
    assert types(since="2024-05-01T12:00:05Z", until="2024-05-01T12:00:01Z") == []
    answer = daemon.query(namespace="destination", ids="pg", q="missing")
    assert (answer["total_events"], answer["response_events"]) == (6, 3)


def test_before_pages_with_no_duplicates_and_no_gaps_while_events_arrive(
    start_daemon: Any,
) -> None:
    daemon = start_daemon(
        {"server": {"cache": {"events": {"size": 1000, "time_window_sec": 3600}}}}
    )
    send(daemon, "busy", json.dumps([{"n": n} for n in range(200)]))
    settle(daemon)
    stop = threading.Event()

    def keep_sending() -> None:
        n = 1000
        while not stop.is_set():
            daemon.post_token("busy", json.dumps({"n": n}))
            n += 1
            time.sleep(0.01)

    writer = threading.Thread(target=keep_sending)
    first = daemon.query(namespace="token", ids="busy", limit=30)["events"]
    writer.start()
    try:
        pages = [first]
        while pages[-1]:
            before = pages[-1][-1]["uid"]
            pages.append(
                daemon.query(namespace="token", ids="busy", limit=30, before=before)["events"]
            )
    finally:
        stop.set()
        writer.join()
    numbers = [e["original"]["n"] for page in pages for e in page]
    newest = numbers[0]
    assert numbers == list(range(newest, -1, -1)), "every older event once, in order"


def test_a_big_answer_is_cut_and_says_so(start_daemon: Any) -> None:
    daemon = start_daemon({**NO_REFILL, "sidecar": {"api": {"max_response_events": 25}}})
    lines = [{"namespace": "token", "id": f"k{n % 5}", "original": {"n": n}} for n in range(50)]
    daemon.post_ndjson(lines)
    settle(daemon)
    reply = daemon.api(CACHE, {"namespace": "token"})
    assert reply.status == 200 and reply.headers.get("X-Events-Cache-Truncated") == "true"
    assert reply.json["response_events"] == 25 and reply.json["total_events"] == 50
    whole = daemon.api(CACHE, {"namespace": "token", "ids": "k1,k2"})
    assert whole.json["response_events"] == 20
    assert "X-Events-Cache-Truncated" not in whole.headers
    limited = daemon.api(CACHE, {"namespace": "token", "limit": 5})  # 5 ids x 5 = 25: fits
    assert limited.json["response_events"] == 25
    assert "X-Events-Cache-Truncated" not in limited.headers


def test_reset_forgets_ids_their_index_and_limited_counts(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    daemon = start_daemon({"server": {"cache": {"events": {"size": 2, "time_window_sec": 3600}}}})
    send(daemon, "gone", json.dumps([{"n": n} for n in range(4)]), "broken")
    send(daemon, "kept", '{"n": 1}')
    settle(daemon)
    deadline = time.monotonic() + 5
    while (
        not redis_client.keys("events_cache:limited:token#gone:*") and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert redis_client.keys("events_cache:limited:token#gone:*")
    redis_client.lpush(list_key("token", "jitsu"), b'{"original":"{}","uid":"j"}')

    reply = daemon.api(CACHE, {"namespace": "token", "ids": "gone,jitsu,never"}, method="DELETE")
    assert (reply.status, reply.json) == (200, {"deleted_ids": 2})
    assert not redis_client.exists(list_key("token", "gone"), list_key("token", "gone", True))
    assert not redis_client.exists(list_key("token", "jitsu"))
    assert not redis_client.keys("events_cache:limited:token#gone:*")
    assert [r["id"] for r in summary(daemon, namespace="token")["ids"]] == ["kept"]
    assert daemon.query(namespace="token", ids="gone")["last_minute_limited"] == 0
    (line,) = [json.loads(x) for x in daemon.log().splitlines() if '"cache reset"' in x]
    assert line["deleted_ids"] == 2 and "test-admin-token" not in json.dumps(line)


def test_reset_of_a_whole_namespace(start_daemon: Any, redis_client: redis.Redis) -> None:
    daemon = start_daemon(NO_REFILL)
    lines = [{"namespace": "token", "id": f"t{n}", "original": {"n": n}} for n in range(450)]
    daemon.post_ndjson(lines)
    daemon.post_ndjson([{"namespace": "destination", "id": "d", "original": {}, "error": "e"}])
    settle(daemon)
    redis_client.lpush(list_key("token", "jitsu"), b'{"original":"{}","uid":"j"}')
    redis_client.lpush(list_key("token", "jitsu", True), b'{"original":"{}","uid":"j"}')
    reply = daemon.api(CACHE, {"namespace": "token", "all": "true"}, method="DELETE")
    assert (reply.status, reply.json) == (200, {"deleted_ids": 451})
    assert redis_client.keys("events_cache:token#*") == []
    assert not redis_client.exists("events_cache:index:token")
    assert daemon.query(namespace="destination", ids="d")["total_events"] == 1


@pytest.mark.parametrize(
    ("method", "path", "params", "message"),
    [
        ("GET", IDS, {"limit": "0"}, "limit must be between 1 and"),
        ("GET", IDS, {"limit": "x"}, "limit must be int"),
        ("GET", IDS, {"cursor": "garbage!"}, "cursor is not one this API handed out"),
        ("GET", IDS, {"namespace": "user"}, "namespace must be"),
        ("GET", CACHE, {"since": "yesterday"}, "since must be RFC 3339"),
        ("GET", CACHE, {"until": "2024-01-01"}, "until must be RFC 3339"),
        ("GET", CACHE, {"before": "x" * 65}, "before must be at most 64"),
        ("GET", CACHE, {"q": "x" * 1001}, "q must be at most 1000"),
        ("DELETE", CACHE, {}, "ids is required"),
        ("DELETE", CACHE, {"ids": "a", "all": "true"}, "not both"),
        ("DELETE", CACHE, {"all": "1"}, "all must be 'true' or 'false'"),
        ("GET", "/api/v1/events/stream", {"status": "ok"}, "status must be empty or 'error'"),
    ],
)
def test_bad_parameters_of_the_new_endpoints(
    start_daemon: Any, method: str, path: str, params: dict[str, str], message: str
) -> None:
    daemon = start_daemon()
    reply = daemon.api(path, params, method=method)
    assert reply.status == 400 and reply.headers["Content-Type"].startswith("application/json")
    assert message in reply.json["message"]
    assert daemon.api(path, params, method=method, token="wrong").status == 401


def test_redis_down_is_503_on_the_new_endpoints(start_daemon: Any, spawn_redis: Any) -> None:
    server = spawn_redis()
    daemon = start_daemon(url=server.url)
    server.kill()
    for method, path, params in (
        ("GET", IDS, {}),
        ("GET", CACHE, {"q": "x"}),
        ("DELETE", CACHE, {"ids": "a"}),
    ):
        reply = daemon.api(path, params, method=method)
        assert reply.status == 503 and "Redis unavailable" in reply.json["message"], reply.raw
