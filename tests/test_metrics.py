"""The registry's contents and the Redis error counter: every Redis operation counts
its failures in `events_cache_redis_errors_total{operation}`, once per failure.

Unit tests drive each background part against a Redis that does not answer; an
end-to-end test stops a daemon's Redis and checks the query API's operations, the
writers' and the health probe's.
"""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from prometheus_client import generate_latest
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from daemon.core.activity import RECEIVED, ActivityCounter
from daemon.core.limiter import LimitedCounter, RateLimiters
from daemon.core.model import Namespace, RedisOperation, Target
from daemon.metrics import Metrics
from daemon.pipeline.activity import ActivityFlusher
from daemon.pipeline.errors import ErrorTally
from daemon.pipeline.limited import LimitedFlusher
from daemon.pipeline.queue import EventQueue, QueuedEntry
from daemon.pipeline.tailswitch import TailSwitch
from daemon.pipeline.trimmer import Trimmer
from daemon.pipeline.writers import Writers
from daemon.store.health import RedisHealth
from daemon.store.storage import Storage
from tests.support.daemon import StartDaemon
from tests.support.servers import SpawnRedis, wait_for
from tests.support.sse import Watcher

ERRORS = "events_cache_redis_errors_total"
OPERATIONS = {
    "write", "trim", "limited", "activity", "ping", "query", "summary", "reset", "tail", "errors"
}  # fmt: skip


def errors(metrics: Metrics, operation: str) -> float | None:
    return metrics.registry.get_sample_value(ERRORS, {"operation": operation})


def test_the_registry_holds_process_gc_and_platform_collectors_and_no_created() -> None:
    metrics = Metrics("9.9.9")
    text = generate_latest(metrics.registry).decode()
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "process_start_time_seconds",
                 "python_gc_objects_collected_total", "python_info"):  # fmt: skip
        assert f"\n{name}" in text, name
    assert "_created" not in text
    # Every operation's child exists from the start, at 0: a rate() of it has data.
    assert {o.value for o in RedisOperation} == OPERATIONS
    assert all(errors(metrics, op) == 0 for op in OPERATIONS)
    # The cache's namespace label is cache_namespace; no metric of ours says namespace.
    assert 'events_cache_received_total{cache_namespace="token"} 0.0' in text
    assert "{namespace=" not in text and ",namespace=" not in text


@pytest.fixture
async def dead() -> Storage:
    """Storage on a port where nothing listens: every command fails at once."""
    client = aioredis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    return Storage(client, size=5, ttl_s=0)


async def test_each_background_operation_counts_its_failures(dead: Storage) -> None:
    metrics = Metrics("test")
    health = RedisHealth(metrics)
    entry = QueuedEntry(Namespace.TOKEN, "a", int(Target.ALL), b'{"n":1}')
    writers = Writers(EventQueue(10, 1), dead, metrics, health, lambda keys: None)
    assert not await writers.write([entry])
    trimmer = Trimmer(dead, metrics, health)
    trimmer.mark({"events_cache:token#a"})
    await trimmer.trim_once()
    await trimmer.trim_once()  # the keys stay marked: a second failure, a second count
    counter = LimitedCounter()
    counter.add(("token", "a", "all"), 100.0)
    tally = ErrorTally()  # the error signatures go with the limited counts
    tally.add([QueuedEntry(Namespace.DESTINATION, "d", int(Target.ERROR), b"{}", "", "boom 1")])
    await LimitedFlusher(counter, RateLimiters(5, 60), dead, health, tally).flush_once()
    await TailSwitch(dead, health, lambda: 0).check_once()
    await TailSwitch(dead, health, lambda: 1).check_once()
    activity = ActivityCounter()
    activity.add("token", "a", 100.0, RECEIVED, 2)
    await ActivityFlusher(activity, dead.activity, health, metrics).flush_once()
    assert activity.take() == {("token", "a", 1): [2, 0, 0, 0]}  # kept for the next flush
    counts = {op: errors(metrics, op) for op in OPERATIONS}
    assert counts == {"write": 1, "trim": 2, "limited": 1, "activity": 1, "tail": 2,
                      "ping": 0, "query": 0, "summary": 0, "reset": 0, "errors": 1}  # fmt: skip
    assert metrics.registry.get_sample_value("events_cache_redis_up") == 0
    await dead.aclose()


@pytest.mark.e2e
def test_queries_summary_reset_tail_writes_and_pings_count_their_failures(
    start_daemon: StartDaemon, spawn_redis: SpawnRedis
) -> None:
    server = spawn_redis()
    daemon = start_daemon(url=server.url)
    before = daemon.metrics()
    assert all(before[f'{ERRORS}{{operation="{op}"}}'] == 0 for op in OPERATIONS)
    server.kill()

    def failed(op: str) -> float:
        return daemon.metric(ERRORS, operation=op)

    cache = "/api/v1/events/cache"
    assert daemon.api(cache, {"namespace": "token", "ids": "a"}).status == 503
    assert failed("query") == 1
    assert daemon.api("/api/v1/events/ids", {"namespace": "token"}).status == 503
    assert failed("summary") == 1
    assert daemon.api(cache, {"namespace": "token", "ids": "a"}, method="DELETE").status == 503
    assert failed("reset") == 1
    watcher = Watcher(daemon.api_port, "namespace=token").start()  # announcing fails
    wait_for(lambda: failed("tail") >= 1, timeout=10, what="a tail error counted")
    watcher.close()
    assert daemon.post_token("a", json.dumps({"n": 1})).status == 202
    # The writer's batch fails, then the writer pings until Redis returns.
    wait_for(lambda: failed("write") == 1 and failed("ping") >= 1, timeout=10)
    assert daemon.metric("events_cache_redis_up") == 0
