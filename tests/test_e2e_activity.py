"""Activity end to end: per id and minute, what every pod received, cached, cached as
errors and rate limited, added to Redis once a second by each of two pods on one Redis,
read from either; its bounds, its 400s and 503, its keys' expiry, reset, the in-memory cap."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, cast

import pytest
import redis

from tests.support.scrape import settle
from tests.support.servers import wait_for

pytestmark = pytest.mark.e2e

ACTIVITY = "/api/v1/events/activity"
KINDS = ("received", "cached", "errors", "rate_limited")
LOST = "events_cache_activity_lost_total"


def events(size: int) -> dict[str, Any]:
    """A rate limit of `size` per pod and id that does not refill during a test."""
    return {"server": {"cache": {"events": {"size": size, "time_window_sec": 3600}}}}


def activity(daemon: Any, **params: Any) -> Any:
    reply = daemon.api(ACTIVITY, params)
    assert reply.status == 200, reply.raw
    return reply.json


def sums(answer: Any) -> dict[str, tuple[int, ...]]:
    """Each id's counts over the minutes: (received, cached, errors, rate_limited)."""
    return {row["id"]: tuple(sum(row[kind]) for kind in KINDS) for row in answer["ids"]}


def lines(namespace: str, id_: str, n: int, **outcome: Any) -> list[dict[str, Any]]:
    return [{"namespace": namespace, "id": id_, "original": {"n": k}, **outcome} for k in range(n)]


def newest_ids(client: redis.Redis) -> list[str]:
    """The 100 ids of the token index written most recently, newest first."""
    members = cast(list[bytes], client.zrevrange("events_cache:index:token", 0, 99))
    return [m.decode() for m in members]


def activity_keys(client: redis.Redis, id_: str) -> list[str]:
    """The activity keys of a token in Redis."""
    return [k.decode() for k in client.scan_iter(f"events_cache:activity:token#{id_}:*")]


def minute_of(text: str) -> int:
    assert text.endswith("Z"), text
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) // 60


def test_counts_from_two_pods_equal_what_was_sent(start_daemon: Any) -> None:
    """Each pod has its own buckets of 5: 8 + 7 events of one key are 10 cached and 5 rate
    limited; errors count the entries of the errors-only list, and an error cached there
    alone (its all-events list limited) counts as rate limited, as in the metrics."""
    first, second = start_daemon(events(5)), start_daemon(events(5))
    before = time.time()
    assert (
        first.post_token("shop", json.dumps([{"n": n} for n in range(8)])).json["rate_limited"] == 3
    )
    assert second.post_token("shop", json.dumps([{"n": n} for n in range(7)])).status == 202
    assert second.post_ndjson(lines("destination", "pg", 3, error="pq: boom")).status == 202
    assert second.post_ndjson(lines("destination", "pg", 2, success={})).status == 202
    # 7 errors: 5 in both lists, 2 in neither
    assert first.post_ndjson(lines("destination", "bq", 7, error="timeout")).status == 202
    # 5 successes fill the all-events list; 2 errors then go to the errors-only list alone
    assert first.post_ndjson(lines("destination", "ch", 5, success={})).status == 202
    assert first.post_ndjson(lines("destination", "ch", 2, error="denied")).status == 202
    settle(first)
    settle(second)
    expected_tokens = {"shop": (15, 10, 0, 5)}
    expected_destinations = {"pg": (5, 5, 3, 0), "bq": (7, 5, 5, 2), "ch": (7, 5, 2, 2)}
    for daemon in (first, second):  # either pod answers for both

        def counted(d: Any = daemon) -> bool:
            tokens, destinations = activity(d, namespace="token"), activity(d, ids="pg,bq,ch")
            return sums(tokens) == expected_tokens and sums(destinations) == expected_destinations

        wait_for(counted)
    after = time.time()
    answer = activity(first, namespace="destination", ids="pg,bq,ch")
    assert sums(answer) == expected_destinations  # counted once, not again on later flushes
    assert answer["namespace"] == "destination"
    assert [row["id"] for row in answer["ids"]] == ["pg", "bq", "ch"]  # as asked
    # 60 minutes, oldest first, one apart, ending with the current one; arrays aligned
    minutes = [minute_of(m) for m in answer["minutes"]]
    assert len(minutes) == 60 and minutes == list(range(minutes[0], minutes[0] + 60))
    assert int(before // 60) <= minutes[-1] <= int(after // 60)
    assert all(m.endswith(":00Z") for m in answer["minutes"])
    for row in answer["ids"]:
        assert all(len(row[kind]) == 60 for kind in KINDS)
        busy = {n for kind in KINDS for n, count in enumerate(row[kind]) if count}
        # the events were sent in the minute of `before`, cached by the minute of `after`
        assert busy and min(minutes[n] for n in busy) >= int(before // 60), row


def test_ids_absent_are_the_most_recently_written_within_the_window(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    daemon = start_daemon(events(5))
    lines_ = [{"namespace": "token", "id": f"k{n:03d}", "original": {}} for n in range(105)]
    assert daemon.post_ndjson(lines_).json["accepted"] == 105
    settle(daemon)
    # an id written two hours ago (by the index) is not active in the last hour
    redis_client.zadd("events_cache:index:token", {"old": time.time() - 7200})

    def all_flushed() -> Any:
        answer = activity(daemon, namespace="token")
        return answer if sum(sum(row["cached"]) for row in answer["ids"]) == 100 else None

    answer = wait_for(all_flushed)
    ids = [row["id"] for row in answer["ids"]]
    assert len(ids) == 100 and ids == newest_ids(redis_client)  # most recently written first
    assert set(sums(answer).values()) == {(1, 1, 0, 0)}
    # the last 5 minutes only: the same ids; the index's old id never
    assert [row["id"] for row in activity(daemon, namespace="token", minutes=5)["ids"]] == ids
    # named, it answers zeros; the window's length follows `minutes`
    named = activity(daemon, namespace="token", ids="old,never-seen", minutes=3)
    assert len(named["minutes"]) == 3
    assert named["ids"] == [
        {"id": id_, **{kind: [0, 0, 0] for kind in KINDS}} for id_ in ("old", "never-seen")
    ]
    assert activity(daemon, namespace="token", ids="")["ids"] == []  # empty: none


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"minutes": "0"}, "minutes"),
        ({"minutes": "61"}, "minutes"),
        ({"minutes": "-1"}, "minutes"),
        ({"minutes": "x"}, "minutes"),
        ({"minutes": "1e3"}, "minutes"),
        ({"ids": ",".join(f"i{n}" for n in range(101))}, "ids: at most 100"),
        ({"ids": "a:error"}, "ids"),
        ({"namespace": "nope"}, "namespace"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    start_daemon: Any, params: dict[str, str], named: str
) -> None:
    daemon = start_daemon()
    reply = daemon.api(ACTIVITY, params)
    assert reply.status == 400, reply.raw
    assert reply.json["message"].startswith(named), reply.json


def test_bounds_token_and_redis_down(start_daemon: Any, spawn_redis: Any) -> None:
    server = spawn_redis()
    daemon = start_daemon(url=server.url)
    hundred = ",".join(f"i{n}" for n in range(100))
    answer = activity(daemon, ids=hundred, minutes=60)
    assert len(answer["ids"]) == 100 and len(answer["minutes"]) == 60
    assert daemon.api(ACTIVITY, {"ids": "a"}, token="wrong").status == 401
    assert daemon.api(ACTIVITY, {"ids": "a"}, token=None).status == 401
    server.kill()
    reply = daemon.api(ACTIVITY, {"namespace": "token"})
    assert reply.status == 503 and "Redis" in reply.json["message"], reply.raw


def test_bounded_in_bytes(start_daemon: Any, redis_client: redis.Redis) -> None:
    """100 ids of 1,000 characters over 60 minutes do not fit the smallest byte bound:
    the last ones are left out, and the answer says so."""
    daemon = start_daemon({"sidecar": {"api": {"max_response_bytes": 131072}}})
    ids = [f"{n:03d}-" + "x" * 1000 for n in range(100)]
    lines_ = [{"namespace": "token", "id": i, "original": {}} for i in ids]
    assert daemon.post_ndjson(lines_).json["accepted"] == 100
    settle(daemon)
    reply = daemon.api(ACTIVITY, {"namespace": "token"})  # the ids from the index
    assert reply.status == 200
    assert len(reply.raw) <= 131072
    assert reply.headers.get("X-Events-Cache-Truncated") == "true"
    kept = [row["id"] for row in reply.json["ids"]]
    assert 50 < len(kept) < 100 and set(kept) < set(ids)
    assert kept == newest_ids(redis_client)[: len(kept)]


def test_keys_expire_an_hour_after_their_hour_and_reset_forgets_them(
    start_daemon: Any, redis_client: redis.Redis
) -> None:
    daemon = start_daemon(events(5))
    assert daemon.post_token("gone", json.dumps([{}] * 3)).status == 202
    assert daemon.post_token("kept", json.dumps([{}] * 2)).status == 202
    settle(daemon)
    wait_for(lambda: sums(activity(daemon, namespace="token", ids="gone,kept"))["gone"][1] == 3)
    keys = wait_for(lambda: activity_keys(redis_client, "gone"))
    wait_for(lambda: all(redis_client.expiretime(key) > 0 for key in keys))  # after HINCRBYs
    for key in keys:
        hour = int(key.rsplit(":", 1)[1])
        assert redis_client.expiretime(key) == (hour + 1) * 3600 + 3600 + 300
        fields = {f.decode() for f in cast(dict[bytes, bytes], redis_client.hgetall(key))}
        assert fields <= {f"{m}:{k}" for m in range(60) for k in "rcel"}, fields
    reply = daemon.api(
        "/api/v1/events/cache", {"namespace": "token", "ids": "gone"}, method="DELETE"
    )
    assert reply.status == 200 and reply.json == {"deleted_ids": 1}
    assert not activity_keys(redis_client, "gone")
    answer = sums(activity(daemon, namespace="token", ids="gone,kept"))
    assert answer == {"gone": (0, 0, 0, 0), "kept": (2, 2, 0, 0)}
    # counted again after the reset, the recreated key gets its expiry again
    assert daemon.post_token("gone", json.dumps({})).status == 202
    wait_for(lambda: sums(activity(daemon, namespace="token", ids="gone"))["gone"][0] == 1)
    keys = activity_keys(redis_client, "gone")
    assert keys
    wait_for(lambda: all(redis_client.expiretime(key) > 0 for key in keys))


def test_the_in_memory_cells_are_capped_and_what_does_not_fit_is_counted(
    start_daemon: Any,
) -> None:
    """With room for 3 (namespace, id, minute) cells, one request for 10 ids keeps the
    received counts of 3 ids; every count is either in Redis or counted as lost."""
    daemon = start_daemon(events(5))
    assert daemon.app is not None
    daemon.app.activity.cap = 3
    ids = [f"c{n}" for n in range(10)]
    assert (
        daemon.post_ndjson([{"namespace": "token", "id": i, "original": {}} for i in ids]).json[
            "accepted"
        ]
        == 10
    )
    settle(daemon)

    def kept() -> dict[str, tuple[int, ...]]:
        return sums(activity(daemon, namespace="token", ids=",".join(ids)))

    # 10 received and 10 cached counts: each kept in Redis or lost
    wait_for(lambda: sum(map(sum, kept().values())) + daemon.metric(LOST) == 20)
    assert sum(counts[0] for counts in kept().values()) == 3  # the request's 3 cells
    assert daemon.metric(LOST) >= 7
    assert len(daemon.app.activity) <= 3
