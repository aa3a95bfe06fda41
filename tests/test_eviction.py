"""Redis' maxmemory policy with the cache's keys (docs/redis.md, "Memory and eviction").

Without `ttl_minutes.events_cache` (the default) the cache's lists carry no TTL, so a
`volatile-*` policy has nothing to evict but the keys that expire: the journey's index
(off here), the activity counts and the error signatures (whose evictions, if any, are
told apart by keyspace notifications): once Redis is full every write fails, and the
sidecar drops what it writes (counted). `allkeys-lru` evicts the coldest lists instead
and every write succeeds.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.events import ndjson_lines, token_ids
from tests.support.daemon import StartDaemon
from tests.support.scrape import settle
from tests.support.servers import SpawnRedis

pytestmark = pytest.mark.e2e

MAXMEMORY = "3mb"


def fill(start_daemon: StartDaemon, url: str, journey: bool = True) -> dict[str, float]:
    """About 12 MB of realistic events over 1,000 ids into a Redis of 3 MB."""
    settings: dict[str, Any] = {"server": {"cache": {"events": {"size": 100_000}}}}
    if not journey:
        settings["sidecar"] = {"journey": {"event_id_from": []}}
    daemon = start_daemon(settings, url=url)
    lines = ndjson_lines(8000, token_ids(1000))
    for start in range(0, len(lines), 200):
        assert daemon.post_ndjson(b"\n".join(lines[start : start + 200])).status == 202
    settle(daemon, timeout=30)
    m = daemon.metrics()
    return {
        "cached": m['events_cache_cached_total{cache_namespace="token",collection="all"}'],
        "dropped": m['events_cache_dropped_total{reason="redis_error"}'],
        "write_errors": m['events_cache_redis_errors_total{operation="write"}'],
    }


def test_volatile_lru_without_ttl_evicts_nothing_and_writes_fail(
    start_daemon: StartDaemon, spawn_redis: SpawnRedis
) -> None:
    server = spawn_redis(
        "--maxmemory", MAXMEMORY, "--maxmemory-policy", "volatile-lru",
        "--notify-keyspace-events", "Ee",
    )  # fmt: skip
    client = server.client()
    evictions = client.pubsub()
    evictions.subscribe("__keyevent@0__:evicted")
    outcome = fill(start_daemon, server.url, journey=False)
    evicted = []
    while (message := evictions.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            evicted.append(message["data"].decode())
    evictions.close()
    assert int(client.info("stats")["evicted_keys"]) == len(evicted)
    # no list, no index: at most activity counts and error signatures, the keys with a TTL
    expiring = ("events_cache:activity:", "events_cache:errors:")
    assert all(key.startswith(expiring) for key in evicted), evicted[:5]
    assert outcome["dropped"] > 0 and outcome["write_errors"] > 0, outcome


def test_allkeys_lru_evicts_the_coldest_lists_and_writes_succeed(
    start_daemon: StartDaemon, spawn_redis: SpawnRedis
) -> None:
    server = spawn_redis("--maxmemory", MAXMEMORY, "--maxmemory-policy", "allkeys-lru")
    outcome = fill(start_daemon, server.url)
    client = server.client()
    assert int(client.info("stats")["evicted_keys"]) > 0
    assert outcome == {"cached": 8000, "dropped": 0, "write_errors": 0}, outcome
